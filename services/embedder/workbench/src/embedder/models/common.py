"""Pieces shared by the GANs: the container type, the generator, and the embedding extractor."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

NOISE_DIM = 100


@dataclass
class GAN:
    """A generator, a discriminator (outputs ``[d_logit, q_logits?]``) and D's feature body.

    ``body`` maps images in [-1, 1] to D's last conv feature map; it shares its layers (and so its
    weights) with ``discriminator``.
    """

    kind: str
    image_size: int
    generator: keras.Model
    discriminator: keras.Model
    body: keras.Model
    noise_dim: int = NOISE_DIM
    categorical_dim: int = 0


def check_size(image_size: int) -> None:
    if image_size < 8 or image_size % 8:
        raise ValueError(f"image size must be a multiple of 8 and >= 8, got {image_size}")


def build_generator(
    image_size: int, latent_dim: int, filters: tuple[int, int, int] = (256, 128, 64)
) -> keras.Model:
    """FC to (S/8)^2 x f0, three stride-2 transposed convs (ReLU, BatchNorm), tanh RGB out."""
    base = image_size // 8
    latent = keras.Input((latent_dim,), name="latent")
    x = layers.Dense(base * base * filters[0], use_bias=False)(latent)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((base, base, filters[0]))(x)
    for f in filters[1:]:
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(latent, x, name="generator")


def embedding_extractor(gan: GAN, name: str | None = None) -> keras.Model:
    """float32 [N, S, S, 3] RGB 0..255 -> D's last conv map flattened, [N, D] (export contract)."""
    size = gan.image_size
    pixels = keras.Input((size, size, 3), name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(pixels)
    x = gan.body(x)
    x = layers.Flatten(name="embedding")(x)
    return keras.Model(pixels, x, name=name or f"{gan.kind}_embedder")
