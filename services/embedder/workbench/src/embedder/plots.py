"""Figures for a training run: D/G loss curves (paper Fig. 8.4) and sample grids per latent code."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def pyplot():  # type: ignore[no-untyped-def]
    """matplotlib's pyplot on the Agg backend (no display; imported only when plotting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window < 2:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_losses(metrics_csv: Path, out: Path) -> None:
    """D and G loss per step (faint) with a moving average (bold); info loss when present."""
    with metrics_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    plt = pyplot()
    steps = np.array([int(r["step"]) for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    window = max(1, min(50, len(rows) // 10))
    for key, colour in (
        ("d_loss", "tab:blue"),
        ("g_loss", "tab:orange"),
        ("info_loss", "tab:green"),
    ):
        if key not in rows[0] or rows[0][key] == "":
            continue
        values = np.array([float(r[key]) for r in rows])
        ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        smooth = _smooth(values, window)
        ax.plot(steps[len(steps) - len(smooth) :], smooth, color=colour, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("GAN training losses (discriminator D, generator G)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def save_grid(
    images: np.ndarray, rows: int, out: Path, row_labels: list[str] | None = None
) -> None:
    """``images`` float in [-1, 1], shape [rows * cols, S, S, 3], laid out row-major."""
    plt = pyplot()
    cols = len(images) // rows
    size = images.shape[1]
    grid = np.ones((rows * (size + 2), cols * (size + 2), 3), np.float32)
    pixels = np.clip((images + 1.0) / 2.0, 0.0, 1.0)
    for index, image in enumerate(pixels[: rows * cols]):
        r, c = divmod(index, cols)
        grid[r * (size + 2) : r * (size + 2) + size, c * (size + 2) : c * (size + 2) + size] = image
    fig, ax = plt.subplots(figsize=(max(3, cols * 0.9), max(3, rows * 0.9)))
    ax.imshow(grid)
    ax.set_xticks([])
    if row_labels:
        ax.set_yticks([r * (size + 2) + size / 2 for r in range(rows)], row_labels)
    else:
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
