"""A plain DCGAN ("vanilla GAN" comparison): 4x4 stride-2 convs, BatchNorm, LeakyReLU, no Q head.

The embedding is D's last conv map flattened: (S/16)^2 x 256 values (4,096 at 64 px).
"""

from __future__ import annotations

import keras
from keras import layers

from embedder.models.common import GAN, NOISE_DIM, build_generator, check_size

BODY_FILTERS = (32, 64, 128, 256)


def build_dcgan(*, image_size: int = 64, noise_dim: int = NOISE_DIM, dropout: float = 0.0) -> GAN:
    check_size(image_size)
    if image_size % 16:
        raise ValueError(f"DCGAN image size must be a multiple of 16, got {image_size}")
    images = keras.Input((image_size, image_size, 3), name="images")
    x = images
    for i, filters in enumerate(BODY_FILTERS):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"conv{i + 1}")(x)
        if i > 0:
            x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
        if dropout > 0 and i < len(BODY_FILTERS) - 1:
            x = layers.Dropout(dropout)(x)
    body = keras.Model(images, x, name="d_body")
    outer = keras.Input((image_size, image_size, 3), name="images")
    d_logit = layers.Dense(1, name="d_logit")(layers.Flatten()(body(outer)))
    discriminator = keras.Model(outer, [d_logit], name="discriminator")
    generator = build_generator(image_size, noise_dim)
    return GAN("dcgan", image_size, generator, discriminator, body, noise_dim, 0)
