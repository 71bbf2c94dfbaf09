"""precision@k of exported embedders: exact FAISS inner-product search over the whole catalogue.

Each model is loaded from the model repository with ``tf.saved_model.load`` and fed encoded image
bytes, so the served graph (preprocessing included) is what gets measured. Queries are the TEST
split of a training run; a neighbour is relevant when it has the query's class; the query itself
is excluded. A second figure also excludes neighbours sharing the query's product title (the same
model in another colour), which otherwise flatters every model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from embedder.data.catalog import Catalog, Item, load_catalog, read_split
from embedder.data.images import load_image
from embedder.errors import ImageError, RunError

logger = logging.getLogger(__name__)

KS = (1, 5, 10)


def latest_version(model_base: Path, name: str) -> Path:
    model_dir = model_base / name
    versions = sorted(
        (int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()), reverse=True
    )
    if not versions:
        raise RunError(f"no exported versions of {name!r} under {model_base}")
    return model_dir / str(versions[0])


def embed_catalog(
    version_dir: Path, files: list[Path], batch_size: int
) -> tuple[np.ndarray, float]:
    """Embed files through the servable's ``serving_default``; returns vectors and seconds."""
    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    out = []
    started = time.perf_counter()
    for start in range(0, len(files), batch_size):
        chunk = [f.read_bytes() for f in files[start : start + batch_size]]
        out.append(fn(images=tf.constant(chunk))["embedding"].numpy())
    return np.concatenate(out).astype(np.float32), time.perf_counter() - started


def precision_at_k(
    vectors: np.ndarray,
    labels: list[str],
    queries: list[int],
    ks: tuple[int, ...] = KS,
    titles: list[str] | None = None,
) -> dict[str, Any]:
    """Exact inner-product search; precision@k per k overall and per class (query excluded)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    depth = max(ks) + 1 + (64 if titles else 0)
    _scores, ids = index.search(vectors[queries], min(depth, len(labels)))
    hits: dict[int, list[float]] = {k: [] for k in ks}
    hits_nt: dict[int, list[float]] = {k: [] for k in ks}
    per_class: dict[str, list[float]] = {}
    kmain = 5 if 5 in ks else ks[0]
    for row, q in enumerate(queries):
        neighbours = [int(i) for i in ids[row] if i >= 0 and i != q]
        same = [labels[i] == labels[q] for i in neighbours]
        for k in ks:
            hits[k].append(float(np.mean(same[:k])))
        per_class.setdefault(labels[q], []).append(float(np.mean(same[:kmain])))
        if titles:
            others = [labels[i] == labels[q] for i in neighbours if titles[i] != titles[q]]
            for k in ks:
                hits_nt[k].append(float(np.mean(others[:k])) if others[:k] else 0.0)
    result: dict[str, Any] = {f"p@{k}": float(np.mean(hits[k])) for k in ks}
    if titles:
        result.update({f"p@{k}_no_same_title": float(np.mean(hits_nt[k])) for k in ks})
    result[f"per_class_p@{kmain}"] = {c: float(np.mean(v)) for c, v in sorted(per_class.items())}
    result["queries"] = len(queries)
    return result


def usable_items(catalog: Catalog) -> list[Item]:
    """Items whose files decode (the same checks as training); bad files are reported, skipped."""
    usable = []
    for item in catalog.items:
        try:
            load_image(catalog.absolute(item), 8)
        except ImageError as exc:
            logger.warning("skipping %s: %s", item.path, exc)
            continue
        usable.append(item)
    return usable


def evaluate(
    model_base: Path, models: list[str], catalog: Catalog, test_paths: list[str], batch_size: int
) -> dict[str, Any]:
    known = {item.path for item in catalog.items}
    missing = [p for p in test_paths if p not in known]
    if missing:
        raise RunError(f"{len(missing)} split paths are not in the catalogue (e.g. {missing[0]})")
    items = usable_items(catalog)
    index_of = {item.path: i for i, item in enumerate(items)}
    queries = [index_of[p] for p in test_paths if p in index_of]
    labels = [item.label for item in items]
    titles = [item.meta.get("product_title", "") for item in items]
    files = [catalog.absolute(item) for item in items]
    results: dict[str, Any] = {}
    for name in models:
        version_dir = latest_version(model_base, name)
        vectors, seconds = embed_catalog(version_dir, files, batch_size)
        logger.info("%s: embedded %d images (dim %d) in %.0f s", name, *vectors.shape, seconds)
        res = precision_at_k(vectors, labels, queries, titles=titles if any(titles) else None)
        res.update(
            {
                "version": int(version_dir.name),
                "dimension": int(vectors.shape[1]),
                "embed_seconds": seconds,
                "images": len(files),
            }
        )
        results[name] = res
    return results


def table(results: dict[str, Any]) -> str:
    keys = [f"p@{k}" for k in KS]
    has_nt = all("p@5_no_same_title" in r for r in results.values())
    head = ["model", "dim", *keys] + (["p@5 excl. same title"] if has_nt else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, str(r["dimension"]), *(f"{r[k]:.3f}" for k in keys)]
        if has_nt:
            cells.append(f"{r['p@5_no_same_title']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    catalog = load_catalog(args.catalog)
    split = read_split(args.split_from)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = evaluate(Path(args.model_base), models, catalog, split["test"], args.batch_size)
    payload = {
        "catalog": str(Path(args.catalog).resolve()),
        "split": str(args.split_from),
        "k": args.k,
        "models": results,
    }
    sys.stdout.write(table(results) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2))
    else:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    return payload


if __name__ == "__main__":  # ``python -m embedder.evaluate``: the full evaluation (make eval)
    from embedder.evaluation.cli import main

    sys.exit(main())
