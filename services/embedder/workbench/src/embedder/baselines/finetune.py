"""Fine-tuned ImageNet baselines, as in Ay & Aydin: the 1000-class layer replaced by a new head.

The paper removes each CNN's ImageNet classifier, adds dropout and a new dense layer, and trains
on the catalogue. Here the head is ``Dropout(0.5) -> Dense(256, "ft_dense") -> Dense(K)`` trained
with softmax cross-entropy on the catalogue's ``category`` column (shop metadata: ``shoes`` |
``handbags``) and nothing else: the product ``class`` labels are the evaluation ground truth and
are never read here. The servable ``<name>_ft`` is backbone + ``ft_dense``; its output,
L2-normalised by ``export_model``, is the embedding (dropout and the softmax layer are dropped).

The backbone stays frozen (CPU only: fine-tuning the convolutions is out of reach here), so the
TRAIN images are embedded once and the head is trained on those pooled features, which is
exactly equivalent to training the stacked model with a frozen backbone, at a fraction of the cost.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm import tqdm

from embedder.baselines.registry import BaselineSpec, build_extractor, spec
from embedder.data.catalog import LABELS_FILE, load_catalog, read_split
from embedder.data.images import load_image
from embedder.errors import CatalogError, ImageError
from embedder.servable import export_model

logger = logging.getLogger(__name__)

TARGET = "category"  # the only training target; never "class"
SUFFIX = "_ft"
DENSE_UNITS = 256
DENSE_LAYER = "ft_dense"
DROPOUT = 0.5
# ReLU, not linear: a linear ft_dense followed by the linear logits layer collapses to a single
# linear classifier, so the new 256-d layer would add no trained non-linearity over the backbone.
ACTIVATION = "relu"
HEAD_BATCH = 64


@dataclass(frozen=True)
class FinetuneResult:
    """Where the servable went and how the head trained."""

    version_dir: Path
    metadata: dict[str, Any]


def train_files(catalog: str | Path, split_from: str | Path) -> tuple[list[Path], list[str]]:
    """The TRAIN-split files and their ``category`` values (the split's "test" list is unused).

    Raises ``CatalogError`` when the catalogue has no ``category`` column or a TRAIN image has no
    category value: fine-tuning has no other allowed target.
    """
    root = Path(catalog)
    labels = root / LABELS_FILE
    if not labels.is_file():
        raise CatalogError(
            f"{root} has no {LABELS_FILE}: fine-tuning needs its '{TARGET}' column "
            "(the shop category, e.g. shoes | handbags) as the training target"
        )
    with labels.open(newline="", encoding="utf-8") as handle:
        columns = csv.DictReader(handle).fieldnames or []
    if TARGET not in columns:
        raise CatalogError(
            f"{labels} has no '{TARGET}' column (columns: {', '.join(columns)}); fine-tuning "
            f"trains only on the shop category, never on the 'class' labels"
        )
    cat = load_catalog(root)
    by_path = cat.by_path()
    wanted = read_split(split_from)["train"]
    items = [by_path[p] for p in wanted if p in by_path]
    if len(items) < len(wanted):
        logger.warning(
            "%d TRAIN paths of the split are not in the catalogue", len(wanted) - len(items)
        )
    if not items:
        raise CatalogError(f"no TRAIN-split image of {split_from} is in {root}")
    empty = [item.path for item in items if not item.meta.get(TARGET)]
    if empty:
        raise CatalogError(f"{len(empty)} TRAIN images have an empty '{TARGET}' (e.g. {empty[0]})")
    return [cat.absolute(item) for item in items], [item.meta[TARGET] for item in items]


def embed_files(
    extractor: keras.Model, files: list[Path], size: int, *, batch_size: int, progress: bool
) -> tuple[np.ndarray, list[int]]:
    """Pooled features of the loadable ``files`` (PIL path) and their indices; bad files skipped."""
    out, kept = [], []
    bar = tqdm(total=len(files), desc="embed train", unit="img", disable=not progress)
    for start in range(0, len(files), batch_size):
        pixels = []
        for index, path in enumerate(files[start : start + batch_size], start):
            try:
                pixels.append(load_image(path, size))
                kept.append(index)
            except ImageError as exc:
                logger.warning("skipping %s: %s", path, exc)
        if pixels:
            batch = np.stack(pixels).astype(np.float32)
            out.append(np.asarray(extractor(batch, training=False), dtype=np.float32))
        bar.update(min(batch_size, len(files) - start))
    bar.close()
    dim = int(extractor.output.shape[-1])
    return (np.concatenate(out) if out else np.zeros((0, dim), np.float32)), kept


def build_head(dim: int, n_categories: int) -> keras.Model:
    """features [N, dim] -> Dropout -> ft_dense [N, 256] -> category logits [N, K]."""
    features = keras.Input((dim,), name="features")
    x = keras.layers.Dropout(DROPOUT, name="ft_dropout")(features)
    x = keras.layers.Dense(DENSE_UNITS, activation=ACTIVATION, name=DENSE_LAYER)(x)
    logits = keras.layers.Dense(n_categories, name="ft_logits")(x)
    return keras.Model(features, logits, name="ft_head")


def balanced_weights(targets: np.ndarray, n_categories: int) -> np.ndarray:
    """Per-sample weights N / (K * count[category]): each category weighs the same in the loss."""
    counts = np.bincount(targets, minlength=n_categories).astype(np.float64)
    return (len(targets) / (n_categories * counts[targets])).astype(np.float32)


def train_head(
    features: np.ndarray,
    targets: np.ndarray,
    n_categories: int,
    *,
    epochs: int,
    batch_size: int = HEAD_BATCH,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> tuple[keras.Model, dict[str, float]]:
    """Adam, softmax cross-entropy, class-balanced sample weights; accuracy in inference mode."""
    keras.utils.set_random_seed(seed)
    head = build_head(features.shape[1], n_categories)
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = head.fit(
        features,
        targets,
        sample_weight=balanced_weights(targets, n_categories),
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
    )
    predicted = np.argmax(head.predict(features, batch_size=1024, verbose=0), axis=1)
    recalls = [float(np.mean(predicted[targets == k] == k)) for k in range(n_categories)]
    hidden = keras.Model(head.input, head.get_layer(DENSE_LAYER).output)(features, training=False)
    hidden = np.asarray(hidden)
    stats = {
        "final_loss": float(history.history["loss"][-1]),
        "train_accuracy": float(np.mean(predicted == targets)),
        "train_balanced_accuracy": float(np.mean(recalls)),
        # ReLU units that never fire are lost embedding dimensions; all-zero rows cannot be unit.
        "dead_units": int(np.sum(~np.any(hidden > 0, axis=0))),
        "zero_embeddings": int(np.sum(~np.any(hidden > 0, axis=1))),
    }
    return head, stats


def _metadata(
    s: BaselineSpec,
    names: list[str],
    kept_categories: list[str],
    n_files: int,
    epochs: int,
    learning_rate: float,
    seed: int,
    split_from: str | Path,
    stats: dict[str, Any],
) -> dict[str, Any]:
    """``assets.extra/embedder.json`` of a fine-tuned baseline: what was trained, on what."""
    counts = Counter(kept_categories)
    return {
        "baseline": True,
        "fine_tuned": True,
        "base_model": s.name,
        "preprocessing": s.preprocessing,
        "source": s.source,
        "head": {
            "target": TARGET,
            "categories": names,
            "category_counts": dict(sorted(counts.items())),
            "epochs": epochs,
            "n_images": len(kept_categories),
            "skipped_images": n_files - len(kept_categories),
            "dropout": DROPOUT,
            "dense_units": DENSE_UNITS,
            "activation": ACTIVATION,
            "embedding_layer": DENSE_LAYER,
            "backbone": "frozen",
            "optimizer": "adam",
            "learning_rate": learning_rate,
            "batch_size": HEAD_BATCH,
            "class_balanced_weights": True,
            "seed": seed,
            "split": str(Path(split_from).resolve()),
            **stats,
        },
    }


def finetune(
    name: str,
    *,
    weights: str | Path | None,
    catalog: str | Path,
    split_from: str | Path,
    model_base: str | Path,
    epochs: int = 5,
    input_size: int | None = None,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    version: int | None = None,
    cache_dir: str | Path | None = None,
    allow_random_weights: bool = False,
    progress: bool = True,
    warmup: bool = True,
) -> FinetuneResult:
    """Train the category head on the TRAIN split; export backbone + ft_dense as ``<name>_ft``."""
    s = spec(name)
    size = input_size or s.input_size
    files, categories = train_files(catalog, split_from)
    names = sorted(set(categories))
    if len(names) < 2:
        raise CatalogError(f"'{TARGET}' has a single value ({names[0]}) in TRAIN: nothing to learn")
    extractor = build_extractor(
        name,
        weights=weights,
        input_size=size,
        cache_dir=cache_dir,
        allow_random_weights=allow_random_weights,
    )
    extractor.trainable = False
    features, kept = embed_files(extractor, files, size, batch_size=batch_size, progress=progress)
    if len(kept) < 2:
        raise CatalogError("fewer than 2 loadable TRAIN images")
    targets = np.array([names.index(categories[i]) for i in kept], dtype=np.int64)
    head, stats = train_head(
        features, targets, len(names), epochs=epochs, learning_rate=learning_rate, seed=seed
    )
    logger.info(
        "%s head: train accuracy %.4f (balanced %.4f) on %d images, %d dead ft_dense units",
        name, stats["train_accuracy"], stats["train_balanced_accuracy"], len(kept),
        stats["dead_units"],
    )  # fmt: skip
    inputs = keras.Input((size, size, 3), dtype="float32", name="rgb_0_255")
    embedding = head.get_layer(DENSE_LAYER)(extractor(inputs, training=False))
    model = keras.Model(inputs, embedding, name=f"{name}{SUFFIX}")
    meta = _metadata(
        s, names, [categories[i] for i in kept], len(files), epochs, learning_rate, seed,
        split_from, stats,
    )  # fmt: skip
    target = export_model(
        model, input_size=size, model_base=model_base, name=f"{name}{SUFFIX}", version=version,
        warmup=warmup, metadata=meta,
    )  # fmt: skip
    return FinetuneResult(target, meta)
