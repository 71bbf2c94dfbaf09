"""Figures in the style of the paper: precision (Fig. 8.5A), latency (8.5B), result grids (8.6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from embedder.data.images import load_image
from embedder.plots import pyplot


def precision_chart(results: dict[str, Any], set_name: str, out: Path) -> None:
    rows = [(name, r["sets"][set_name]) for name, r in results.items() if set_name in r["sets"]]
    rows.sort(key=lambda x: x[1]["p@5"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    means = [r["p@5"] for _, r in rows]
    err = np.array([[r["p@5"] - r["p@5_ci95"][0], r["p@5_ci95"][1] - r["p@5"]] for _, r in rows])
    colours = [
        "tab:red" if "gan" in n else "tab:grey" if n == "colour_hist" else "tab:blue"
        for n, _ in rows
    ]
    ax.barh([n for n, _ in rows], means, xerr=err.T if len(rows) else None, color=colours)
    for i, value in enumerate(means):
        ax.text(value + 0.01, i, f"{value:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"precision@5 ({set_name} queries, 95 % bootstrap CI)")
    ax.set_title("Class precision per embedder (cf. Fig. 8.5A)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def latency_chart(results: dict[str, Any], out: Path) -> None:
    rows = [(n, r["latency"]) for n, r in results.items() if "latency" in r]
    rows.sort(key=lambda x: x[1]["batch1_p50_ms"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    p50 = [lat["batch1_p50_ms"] for _, lat in rows]
    p95 = [lat["batch1_p95_ms"] - lat["batch1_p50_ms"] for _, lat in rows]
    ax.barh([n for n, _ in rows], p50, xerr=[np.zeros(len(rows)), p95], color="tab:blue")
    for i, value in enumerate(p50):
        ax.text(value * 1.05, i, f"{value:.1f} ms", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("embedding latency, batch 1, ms (bar p50, whisker p95; bytes in, CPU)")
    ax.set_title("Inference time per image (cf. Fig. 8.5B)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def result_grid(
    files: list[Path],
    labels: np.ndarray,
    vectors: np.ndarray,
    groups: np.ndarray,
    queries: list[int],
    out: Path,
    *,
    k: int = 5,
    cell: int = 72,
) -> None:
    """One row per query: the query, then its top-k (green frame: same class, red: other)."""
    from embedder.evaluation.metrics import search

    pad = 4
    grid = Image.new(
        "RGB", ((k + 1) * (cell + pad) + pad, len(queries) * (cell + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(grid)
    for row, q in enumerate(queries):
        pool = np.flatnonzero(groups == groups[q])
        ids = [int(i) for i in search(vectors, pool, np.array([q]), k + 1)[0] if i != q][:k]
        for col, idx in enumerate([q, *ids]):
            x, y = pad + col * (cell + pad), pad + row * (cell + pad)
            grid.paste(Image.fromarray(load_image(files[idx], cell - 6)), (x + 3, y + 3))
            colour = "black" if col == 0 else "green" if labels[idx] == labels[q] else "red"
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=colour, width=3)
    grid.save(out)
