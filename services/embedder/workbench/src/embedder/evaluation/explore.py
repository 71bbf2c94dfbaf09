"""Head and run exploration on the VALIDATION rows only (20 % of TRAIN; index = TRAIN).

This is how settings are chosen: never on the test split, never on an unseen catalogue. It
embeds in-process (no export) so that many runs x heads can be compared quickly; the chosen
setting is then exported and measured on the served path by ``python -m embedder eval``.

    python -m embedder explore --runs var/runs/a,var/runs/b --heads pool5-pca,gap5-pca
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np

from embedder.data.catalog import load_catalog
from embedder.evaluation import metrics
from embedder.evaluation.runner import prepare

logger = logging.getLogger("embedder.explore")


def _pixels(files: list[Path], size: int, cache: Path | None, object_crop: bool) -> np.ndarray:
    from embedder.heads.fit import load_pixels

    if cache is not None:  # one file per size and framing: runs of 64 and 96 px share a call
        framing = "-object" if object_crop else ""
        cache = cache.with_name(f"{cache.stem}-{size}px{framing}{cache.suffix}")
    if cache is not None and cache.is_file():
        return np.load(cache)
    pixels = load_pixels(files, size, object_crop)
    if len(pixels) != len(files):
        raise RuntimeError("some catalogue images failed to load; cannot align rows")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, pixels)
    return pixels


def explore(
    catalog: Path,
    split: Path,
    runs: list[str],
    heads: list[str],
    *,
    seed: int = 0,
    cache: Path | None = None,
    framings: tuple[bool, ...] = (False,),
) -> list[dict]:
    from embedder.heads.fit import gan_and_train_files
    from embedder.heads.model import HeadConfig, build_head, fit_head_features, pooled_model

    prep = prepare(load_catalog(catalog), split, seed)
    val, train, _ = prep.query_sets["validation"]
    rows = []
    for run in runs:
        size = random_size(run)
        gan, _, _ = gan_and_train_files(
            None if size is not None else run,
            seed=seed,
            catalog=str(catalog),
            split_from=str(split),
            image_size=size or 64,
        )
        framed = {f: _pixels(prep.files, gan.image_size, cache, f) for f in framings}
        for head, object_crop in [(h, f) for h in heads for f in framings]:
            pixels = framed[object_crop]
            config = HeadConfig.parse(head, object_crop=object_crop)
            pooled = pooled_model(gan, config)
            feats = _embed(pooled, pixels)
            whitening = fit_head_features(config, feats[train])
            model = build_head(gan, config, whitening)
            vectors = _embed(model, pixels)
            scores = metrics.query_scores(vectors, prep.labels, val, groups=prep.groups, pool=train)
            row = {
                "run": run,
                "training": describe(run),
                "head": head,
                "framing": "object" if object_crop else "pad",
                "dim": int(vectors.shape[1]),
                **{k: float(v.mean()) for k, v in scores.values.items()},
            }
            logger.info("%s", json.dumps(row))
            rows.append(row)
    return rows


def random_size(run: str) -> int | None:
    """The input size of a random-weights control (``random`` = 64 px, ``random:96``), else None:
    a control must see the photos at the size of the run it is compared with."""
    name, _, size = run.partition(":")
    if name != "random":
        return None
    if not size:
        return 64
    if not size.isdigit() or int(size) == 0 or int(size) % 8:
        raise ValueError(f"{run!r}: the control's size must be a positive multiple of 8")
    return int(size)


def describe(run: str) -> str:
    """The run's training settings in a few words (from its run.json)."""
    if (size := random_size(run)) is not None:
        return "none (random weights: the control)" + ("" if size == 64 else f", {size} px")
    summary = json.loads((Path(run) / "run.json").read_text())
    c = summary["config"]
    parts = [f"{c['model']} {c['image_size']} px", f"{summary['steps']} steps"]
    # Steps per second: the same budget buys 3x more steps on one 2-core machine than another.
    rate = summary["steps"] / max(summary["train_seconds"], 1e-9)
    parts.append(f"{summary['train_seconds'] / 60:.0f} min ({rate:.2f} steps/s)")
    if c.get("contrastive_weight"):
        parts.append(f"SimCLR in D x{c['contrastive_weight']:g} (T {c['temperature']:g})")
    if c.get("rotation_weight"):
        views = " of augmented views" if c.get("rotation_augment") else ""
        parts.append(f"rotation{views} in D x{c['rotation_weight']:g} (SS-GAN)")
    if c.get("generator_filters"):
        parts.append("G filters " + ",".join(str(f) for f in c["generator_filters"]))
    if c.get("diff_augment"):
        parts.append("DiffAugment")
    if c.get("dropout", 0.5) != 0.5:
        parts.append(f"dropout {c['dropout']:g}")
    return ", ".join(parts)


def _embed(model, pixels: np.ndarray, batch: int = 256) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = [
        np.asarray(model(pixels[s : s + batch].astype(np.float32), training=False))
        for s in range(0, len(pixels), batch)
    ]
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m embedder explore", description=__doc__)
    p.add_argument("--catalog", default="../shared/data/fashion-product-images-small")
    p.add_argument("--split-from", default="var/runs/infogan64/split.json")
    p.add_argument(
        "--runs",
        required=True,
        help="comma-separated run dirs; 'random' = the random-weights control at 64 px, "
        "'random:96' at 96 px",
    )
    p.add_argument("--heads", default="pool5-pca")
    p.add_argument(
        "--pixel-cache", default="var/eval/pixels.npy", help="'none' to skip; -<size>px is added"
    )
    p.add_argument(
        "--framings",
        default="pad",
        help="comma-separated: pad (the whole photo, the default), object (crop to the product)",
    )
    p.add_argument("--json", default="docs/exploration.json", help="'' to skip")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = explore(
        Path(args.catalog),
        Path(args.split_from),
        args.runs.split(","),
        args.heads.split(","),
        cache=Path(args.pixel_cache) if args.pixel_cache != "none" else None,
        framings=tuple(f == "object" for f in args.framings.split(",")),
    )
    for r in rows:
        sys.stdout.write(
            f"{r['run']:40s} {r['head']:20s} {r['framing']:6s} {r['dim']:5d} "
            f"p@1 {r['p@1']:.3f} p@5 {r['p@5']:.3f}\n"
        )
    if args.json:
        command = "python -m embedder explore " + shlex.join(argv)
        payload = {"command": command, "rows": rows}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 0
