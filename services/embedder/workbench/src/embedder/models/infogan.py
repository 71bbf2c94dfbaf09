"""InfoGAN after Table 8.1 of Ay & Aydin: D and Q share six 3x3 convolutions.

Shared body: filters 16, 32, 64, 128, 256, 16 with strides 2, 1, 2, 1, 2, 1, each followed by
BatchNorm (not on the first), LeakyReLU(0.2) and Dropout. D ends in one sigmoid unit (kept as a
logit for a numerically stable loss); Q predicts the categorical latent code. The embedding is
the body's output flattened: (S/8)^2 x 16 values, 12,544 at 224 px, 1,024 at 64 px.
"""

from __future__ import annotations

import keras
from keras import layers

from embedder.models.common import GAN, NOISE_DIM, build_generator, check_size

BODY_FILTERS = (16, 32, 64, 128, 256, 16)
BODY_STRIDES = (2, 1, 2, 1, 2, 1)


def build_body(image_size: int, dropout: float, name: str = "d_body") -> keras.Model:
    images = keras.Input((image_size, image_size, 3), name="images")
    x = images
    for i, (filters, stride) in enumerate(zip(BODY_FILTERS, BODY_STRIDES, strict=True)):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"conv{i + 1}")(x)
        if i > 0:
            x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
        if i < len(BODY_FILTERS) - 1 and dropout > 0:
            x = layers.Dropout(dropout, name=f"drop{i + 1}")(x)
    return keras.Model(images, x, name=name)


def build_infogan(
    *,
    image_size: int = 64,
    categorical_dim: int = 8,
    noise_dim: int = NOISE_DIM,
    dropout: float = 0.5,
    generator_filters: tuple[int, int, int] = (256, 128, 64),
) -> GAN:
    """Generator (noise + one-hot code), D with a Q head sharing its convolutions."""
    check_size(image_size)
    if categorical_dim < 2:
        raise ValueError("categorical_dim must be >= 2")
    body = build_body(image_size, dropout)
    images = keras.Input((image_size, image_size, 3), name="images")
    features = layers.Flatten(name="flatten")(body(images))
    features = layers.Dropout(dropout, name="drop_head")(features) if dropout > 0 else features
    d_logit = layers.Dense(1, name="d_logit")(features)
    q = layers.Dense(128, name="q_dense")(features)
    q = layers.BatchNormalization(name="q_bn")(q)
    q = layers.LeakyReLU(0.2, name="q_lrelu")(q)
    q_logits = layers.Dense(categorical_dim, name="q_logits")(q)
    discriminator = keras.Model(images, [d_logit, q_logits], name="discriminator")
    generator = build_generator(image_size, noise_dim + categorical_dim, tuple(generator_filters))
    return GAN("infogan", image_size, generator, discriminator, body, noise_dim, categorical_dim)
