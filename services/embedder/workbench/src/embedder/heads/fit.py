"""Fit (PCA on TRAIN-split images, no labels) and export an improved head as a servable."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from embedder.data.catalog import load_catalog, read_split
from embedder.data.images import load_image
from embedder.errors import ImageError, RunError
from embedder.heads.model import (
    HeadConfig,
    Whitening,
    build_head,
    fit_whitening,
    pooled_extractor,
)
from embedder.models import GAN, build_gan
from embedder.servable import export_model

logger = logging.getLogger(__name__)


def load_pixels(files: list[Path], size: int, object_crop: bool = False) -> np.ndarray:
    """uint8 [N, size, size, 3] via the training/evaluation PIL path; bad files are skipped."""
    images = []
    for path in files:
        try:
            images.append(load_image(path, size, object_crop=object_crop))
        except ImageError as exc:
            logger.warning("skipping %s: %s", path, exc)
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)


def fit_head(
    gan: GAN, config: HeadConfig, train_files: list[Path], batch_size: int = 256
) -> Whitening | None:
    """Whitening fitted on the pooled features of ``train_files`` (None for heads without PCA)."""
    if not config.uses_pca:
        return None
    pixels = load_pixels(train_files, gan.image_size, config.object_crop)
    if len(pixels) < 2:
        raise RunError("need at least 2 training images to fit the PCA-whitening")
    model = pooled_extractor(gan, config)
    feats = np.concatenate(
        [
            np.asarray(model(pixels[s : s + batch_size].astype(np.float32), training=False))
            for s in range(0, len(pixels), batch_size)
        ]
    )
    logger.info("fitting PCA-whitening on %d x %d features", *feats.shape)
    return fit_whitening(feats, config.pca_dims, config.pca_power)


def export_head(
    gan: GAN,
    config: HeadConfig,
    train_files: list[Path],
    *,
    model_base: str | Path,
    name: str,
    metadata: dict[str, object] | None = None,
    **export: Any,
) -> Path:
    """Fit the head on ``train_files`` and export it as the servable ``name``.

    ``export`` goes to :func:`embedder.servable.export_model` as is (``version``, ``warmup``,
    ``max_pixels``), with that function's defaults; ``metadata`` is added to the head's own.
    """
    whitening = fit_head(gan, config, train_files)
    extractor = build_head(gan, config, whitening, name=name)
    meta = {"head": config.as_dict(), "pca_fit_images": len(train_files) if whitening else 0}
    meta.update(metadata or {})
    return export_model(
        extractor,
        input_size=gan.image_size,
        model_base=model_base,
        name=name,
        metadata=meta,
        object_crop=config.object_crop,
        **export,
    )


def gan_and_train_files(
    run: str | None,
    *,
    random_model: str = "infogan",
    image_size: int = 64,
    categorical_dim: int = 8,
    seed: int = 0,
    catalog: str | None = None,
    split_from: str | None = None,
    needs_files: bool = True,
) -> tuple[GAN, list[Path], dict[str, object]]:
    """The GAN (trained run, or random weights) and the TRAIN-split files to fit on."""
    if run:
        from embedder.train import load_trained

        gan, summary = load_trained(run)
        catalog = catalog or summary["config"]["catalog"]
        split_from = split_from or str(Path(run) / "split.json")
        meta: dict[str, object] = {
            "source": str(Path(run).resolve()),
            "model": gan.kind,
            "checkpoint": summary["checkpoint"],
            "steps": summary["steps"],
            "run_status": summary.get("status", "finished"),
            "training": summary["config"],
        }
    else:
        keras.utils.set_random_seed(seed)
        gan = build_gan(random_model, image_size=image_size, categorical_dim=categorical_dim)
        meta = {"source": "random weights (control)", "model": random_model, "seed": seed}
    if not needs_files:
        return gan, [], meta
    if catalog is None or split_from is None:
        raise RunError("random-weights heads need --catalog and --split-from to fit on")
    cat = load_catalog(catalog)
    by_path = cat.by_path()
    train = [cat.absolute(by_path[p]) for p in read_split(split_from)["train"] if p in by_path]
    return gan, train, meta
