"""tf.data input pipeline: paths -> PIL-preprocessed images, skipping bad files, shuffled, batched.

Decoding goes through :func:`embedder.data.images.load_image` (in a ``py_function``) so training
sees exactly the preprocessing used for evaluation. Bad files are logged once and filtered out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from embedder.data.images import load_image
from embedder.errors import ImageError

logger = logging.getLogger(__name__)


class _Loader:
    """Loads one path; remembers the files it had to skip."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.skipped: dict[str, str] = {}

    def __call__(self, path: tf.Tensor) -> tuple[np.ndarray, bool]:
        name = path.numpy().decode()
        try:
            return load_image(name, self.size), True
        except ImageError as exc:
            if name not in self.skipped:
                self.skipped[name] = str(exc)
                logger.warning("skipping %s: %s", name, exc)
            return np.zeros((self.size, self.size, 3), np.uint8), False


def load_images(
    paths: list[Path], *, size: int, cache: bool = True
) -> tuple[tf.data.Dataset, _Loader]:
    """uint8 [size, size, 3] images in path order, bad files filtered out (and cached in memory)."""
    loader = _Loader(size)

    def load(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, ok = tf.py_function(loader, [path], [tf.uint8, tf.bool])
        image.set_shape([size, size, 3])
        ok.set_shape([])
        return image, ok

    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda _image, ok: ok).map(lambda image, _ok: image)
    return (ds.cache() if cache else ds), loader


def training_batches(
    images: tf.data.Dataset, *, batch_size: int, seed: int, buffer: int = 16_384
) -> tf.data.Dataset:
    """One epoch of shuffled float32 [B, S, S, 3] batches (0..255); ``seed`` fixes the order.

    Callers pass ``seed + epoch`` so a resumed run sees the same order as an uninterrupted one.
    """
    ds = images.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda batch: tf.cast(batch, tf.float32), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_batches(images: tf.data.Dataset, *, batch_size: int) -> tf.data.Dataset:
    return images.batch(batch_size).map(lambda b: tf.cast(b, tf.float32)).prefetch(2)
