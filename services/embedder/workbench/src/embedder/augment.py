"""Batched, differentiable image augmentations for self-supervised discriminators (in-graph).

SimCLR's recipe (Chen et al., 2020) as ContraD uses it inside D: random resized crop, horizontal
flip, colour jitter (brightness, contrast, saturation, hue) with probability 0.8, grayscale with
probability 0.2. Every op is differentiable in the pixels, so the same function serves as
DiffAugment (Zhao et al., 2020) on generated images. Class in a catalogue is shape, not colour:
strong colour jitter is what makes the learnt features ignore colour.

Inputs and outputs are float [B, S, S, 3] in [-1, 1]; randomness comes from a tf.random.Generator
so a resumed run draws the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

# RGB <-> YIQ: a hue shift is a rotation of the I/Q plane.
_TO_YIQ = tf.constant(
    [[0.299, 0.596, 0.211], [0.587, -0.274, -0.523], [0.114, -0.322, 0.312]], tf.float32
)
_FROM_YIQ = tf.constant(
    [[1.0, 1.0, 1.0], [0.956, -0.272, -1.106], [0.621, -0.647, 1.703]], tf.float32
)
_LUMA = tf.constant([0.299, 0.587, 0.114], tf.float32)


@dataclass(frozen=True)
class AugmentConfig:
    min_scale: float = 0.35
    jitter_p: float = 0.8
    strength: float = 1.0  # SimCLR's colour strength s (0.8 * s brightness/contrast/saturation)
    grayscale_p: float = 0.2
    flip: bool = True


def _per_sample(rng: tf.random.Generator, batch: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return rng.uniform([batch, 1, 1, 1], low, high)


def random_resized_crop(images: tf.Tensor, rng: tf.random.Generator, min_scale: float) -> tf.Tensor:
    """Crop a random box (area min_scale..1, aspect 3/4..4/3) and resize it back to S x S."""
    batch = tf.shape(images)[0]
    size = tf.shape(images)[1:3]
    scale = rng.uniform([batch], min_scale, 1.0)
    ratio = tf.exp(rng.uniform([batch], math.log(3 / 4), math.log(4 / 3)))
    h = tf.minimum(tf.sqrt(scale / ratio), 1.0)
    w = tf.minimum(tf.sqrt(scale * ratio), 1.0)
    y0 = rng.uniform([batch]) * (1.0 - h)
    x0 = rng.uniform([batch]) * (1.0 - w)
    boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
    return tf.image.crop_and_resize(images, boxes, tf.range(batch), size)


def colour_jitter(images01: tf.Tensor, rng: tf.random.Generator, strength: float) -> tf.Tensor:
    """Brightness, contrast, saturation and hue, each with its own per-sample factor."""
    batch = tf.shape(images01)[0]
    s = 0.8 * strength
    x = images01 * _per_sample(rng, batch, 1 - s, 1 + s)
    mean = tf.reduce_mean(tf.tensordot(x, _LUMA, 1), axis=[1, 2])[:, None, None, None]
    x = mean + (x - mean) * _per_sample(rng, batch, 1 - s, 1 + s)
    gray = tf.tensordot(x, _LUMA, 1)[..., None]
    x = gray + (x - gray) * _per_sample(rng, batch, 1 - s, 1 + s)
    angle = rng.uniform([batch], -0.2 * strength, 0.2 * strength) * 2 * math.pi
    yiq = tf.tensordot(x, _TO_YIQ, 1)
    cos, sin = tf.cos(angle)[:, None, None], tf.sin(angle)[:, None, None]
    i, q = yiq[..., 1] * cos - yiq[..., 2] * sin, yiq[..., 1] * sin + yiq[..., 2] * cos
    x = tf.tensordot(tf.stack([yiq[..., 0], i, q], axis=-1), _FROM_YIQ, 1)
    return tf.clip_by_value(x, 0.0, 1.0)


def augment(images: tf.Tensor, rng: tf.random.Generator, config: AugmentConfig) -> tf.Tensor:
    """One random view of each image ([-1, 1] in and out)."""
    batch = tf.shape(images)[0]
    x = random_resized_crop(images, rng, config.min_scale)
    if config.flip:
        x = tf.where(_per_sample(rng, batch, 0.0, 1.0) < 0.5, tf.reverse(x, axis=[2]), x)
    x01 = (x + 1.0) / 2.0
    jittered = colour_jitter(x01, rng, config.strength)
    x01 = tf.where(_per_sample(rng, batch, 0.0, 1.0) < config.jitter_p, jittered, x01)
    gray = tf.repeat(tf.tensordot(x01, _LUMA, 1)[..., None], 3, axis=-1)
    x01 = tf.where(_per_sample(rng, batch, 0.0, 1.0) < config.grayscale_p, gray, x01)
    return x01 * 2.0 - 1.0


def nt_xent(z1: tf.Tensor, z2: tf.Tensor, temperature: float) -> tf.Tensor:
    """SimCLR's normalised-temperature cross entropy over 2B views (positives: the pairs)."""
    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
    n = tf.shape(z1)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    logits -= tf.eye(2 * n) * 1e9
    targets = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    )
