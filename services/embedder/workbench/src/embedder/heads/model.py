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

from embedder.heads.colour import ColourHistogram
from embedder.models import GAN, embedding_extractor

HEADS = (
    "flat",
    "pool5",
    "pool5-pca",
    "pool5-pca-colour",
    "pool5-pca-flip",
    "gap5-pca",
    "gap5-pca-flip",
    "pool4-pca",
)
DEFAULT_HEAD = "pool5-pca"
# feature name -> (D layer, grid side): a grid of 1 is global average pooling.
FEATURES = {"pool5": ("lrelu5", 4), "gap5": ("lrelu5", 1), "pool4": ("lrelu4", 4)}


@dataclass(frozen=True)
class HeadConfig:
    """``head`` is ``flat`` or ``<features>[-pca][-flip][-colour]`` (see ``HEADS``)."""

    head: str = DEFAULT_HEAD
    layer: str = "lrelu5"
    grid: int = 4
    pca_dims: int = 384
    pca_power: float = 0.35
    colour_weight: float = 0.3
    # Frame each image on its product before D (embedder.data.images: crop to the non-white
    # bounding box, pad with a margin). Off: it lost on the validation rows (docs/evaluation.md).
    object_crop: bool = False

    @classmethod
    def parse(cls, head: str, **overrides: object) -> HeadConfig:
        """Layer and grid follow from the head's feature name (``pool5``, ``gap5``, ...)."""
        base = head.split("-", 1)[0]
        if head != "flat" and base not in FEATURES:
            raise ValueError(f"unknown head {head!r}; known: {', '.join(HEADS)}")
        layer, grid = FEATURES.get(base, ("lrelu5", 4))
        return cls(head=head, layer=layer, grid=grid, **overrides)  # type: ignore[arg-type]

    @property
    def uses_pca(self) -> bool:
        return "-pca" in self.head

    @property
    def flip(self) -> bool:
        """Sum the features of the image and its mirror: exactly invariant to left/right."""
        return "-flip" in self.head

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
    pool = layers.AveragePooling2D(side // grid, name="grid_pool") if side != grid else None
    flatten = layers.Flatten()

    def features(image: keras.KerasTensor) -> keras.KerasTensor:
        x = sub(image)
        return flatten(pool(x) if pool is not None else x)

    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(pixels)
    if config.flip:
        mirrored = layers.Lambda(lambda t: t[:, :, ::-1, :], name="mirror")(x)
        out = layers.Add(name="with_mirror")([features(x), features(mirrored)])
    else:
        out = features(x)
    return layers.UnitNormalization(axis=1, name="pooled_l2")(out)


def fit_head_features(config: HeadConfig, features: np.ndarray) -> Whitening | None:
    """The whitening of a pca head, fitted on pooled features (rows); None for other heads."""
    if not config.uses_pca:
        return None
    return fit_whitening(features, config.pca_dims, config.pca_power)


def pooled_model(gan: GAN, config: HeadConfig) -> keras.Model:
    """The features a head whitens (the flat head has none: its own output is returned)."""
    return embedding_extractor(gan) if config.head == "flat" else pooled_extractor(gan, config)


def pooled_extractor(gan: GAN, config: HeadConfig | None = None) -> keras.Model:
    """0..255 pixels -> the L2-normalised pooled features (before any whitening)."""
    config = config or HeadConfig("pool5")
    pixels = keras.Input((gan.image_size, gan.image_size, 3), name="pixels")
    return keras.Model(pixels, _pooled(gan, config, pixels), name="pooled_features")


def build_head(
    gan: GAN, config: HeadConfig, whitening: Whitening | None = None, name: str | None = None
) -> keras.Model:
    """The export-contract extractor for ``config.head`` (``whitening`` needed for pca heads)."""
    if config.head not in HEADS and not config.head.startswith(tuple(FEATURES)):
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
