"""Embedding heads on a trained discriminator, all export-ready (0..255 pixels -> features).

- ``flat``: the paper's embedding, D's last conv map flattened (8x8x16 at 64 px).
- ``pool5``: the 5th conv block (256 channels) average-pooled to a 4x4 grid, flattened, L2.
  Global pooling loses the silhouette layout that carries the class here; a coarse grid keeps it.
- ``pool5-pca``: ``pool5`` then PCA-whitening fitted on TRAIN-split images (no labels), as one
  fixed Dense layer. Whitening stops a few high-variance directions dominating the dot product.
- ``pool5-pca-colour``: ``pool5-pca`` concatenated with a weighted in-graph HSV histogram.

The settings below were chosen on a validation part of the TRAIN split (docs/evaluation.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import layers

from embedder.improve.colour import ColourHistogram
from embedder.models import GAN, embedding_extractor

HEADS = ("flat", "pool5", "pool5-pca", "pool5-pca-colour")
DEFAULT_HEAD = "pool5-pca"


@dataclass(frozen=True)
class HeadConfig:
    head: str = DEFAULT_HEAD
    layer: str = "lrelu5"
    grid: int = 4
    pca_dims: int = 384
    pca_power: float = 0.35
    colour_weight: float = 0.3

    @property
    def uses_pca(self) -> bool:
        return "pca" in self.head

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Whitening:
    """y = x @ kernel + bias: PCA projection scaled by eigenvalue ** -power."""

    kernel: np.ndarray
    bias: np.ndarray


def fit_whitening(features: np.ndarray, dims: int, power: float, eps: float = 1e-6) -> Whitening:
    """Unsupervised: mean, covariance and eigenvectors of ``features`` (rows), top ``dims``."""
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / max(len(x) - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1][: min(dims, x.shape[1], len(x))]
    vals = np.maximum(eigvals[order], 0.0)
    scale = (vals + eps * max(vals[0], eps)) ** -power
    kernel = eigvecs[:, order] * scale
    return Whitening(kernel.astype(np.float32), (-(mean @ kernel)).astype(np.float32))


def _pooled(gan: GAN, config: HeadConfig, pixels: keras.KerasTensor) -> keras.KerasTensor:
    body = gan.body
    sub = keras.Model(body.input, body.get_layer(config.layer).output, name="d_features")
    side = int(sub.output.shape[1])
    grid = min(config.grid, side)  # small inputs (tests) have maps smaller than the grid
    if side % grid:
        raise ValueError(f"{config.layer} is {side}x{side}: not divisible by grid {grid}")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(pixels)
    x = sub(x)
    if side != grid:
        x = layers.AveragePooling2D(side // grid, name="grid_pool")(x)
    x = layers.Flatten()(x)
    return layers.UnitNormalization(axis=1, name="pooled_l2")(x)


def pooled_extractor(gan: GAN, config: HeadConfig | None = None) -> keras.Model:
    """0..255 pixels -> the L2-normalised pooled features (before any whitening)."""
    config = config or HeadConfig("pool5")
    pixels = keras.Input((gan.image_size, gan.image_size, 3), name="pixels")
    return keras.Model(pixels, _pooled(gan, config, pixels), name="pooled_features")


def build_head(
    gan: GAN, config: HeadConfig, whitening: Whitening | None = None, name: str | None = None
) -> keras.Model:
    """The export-contract extractor for ``config.head`` (``whitening`` needed for pca heads)."""
    if config.head not in HEADS:
        raise ValueError(f"unknown head {config.head!r}; known: {', '.join(HEADS)}")
    if config.head == "flat":
        return embedding_extractor(gan, name=name)
    pixels = keras.Input((gan.image_size, gan.image_size, 3), name="pixels")
    x = _pooled(gan, config, pixels)
    if config.uses_pca:
        if whitening is None:
            raise ValueError(f"head {config.head} needs a fitted whitening")
        dense = layers.Dense(whitening.kernel.shape[1], name="pca_whiten", trainable=False)
        x = dense(x)
        dense.set_weights([whitening.kernel, whitening.bias])
        x = layers.UnitNormalization(axis=1, name="whitened_l2")(x)
    if config.head.endswith("colour"):
        colour = layers.UnitNormalization(axis=1)(ColourHistogram(name="hsv_hist")(pixels))
        colour = layers.Rescaling(config.colour_weight, name="colour_weight")(colour)
        x = layers.Concatenate(name="gan_and_colour")([x, colour])
    return keras.Model(pixels, x, name=name or f"{gan.kind}_{config.head}")
