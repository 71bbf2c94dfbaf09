"""In-graph image preprocessing for exported models: bytes -> RGB float 0..255, square, resized.

Mirrors :func:`embedder.data.images.preprocess_pil` (any mode to RGB with alpha composited on
white, centre-pad to a square on white, bilinear antialiased resize) so that the served embedding
matches the one computed during evaluation from PIL images.
"""

from __future__ import annotations

import tensorflow as tf

WHITE = 255.0


def _to_rgb(image: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, C] with C in 1..4 -> float32 [H, W, 3], alpha composited on white."""
    pixels = tf.cast(image, tf.float32)
    channels = tf.shape(pixels)[-1]

    def gray() -> tf.Tensor:
        return tf.tile(pixels[..., :1], [1, 1, 3])

    def gray_alpha() -> tf.Tensor:
        alpha = pixels[..., 1:2] / 255.0
        return tf.tile(pixels[..., :1] * alpha + WHITE * (1.0 - alpha), [1, 1, 3])

    def rgb() -> tf.Tensor:
        return pixels[..., :3]

    def rgba() -> tf.Tensor:
        alpha = pixels[..., 3:4] / 255.0
        return pixels[..., :3] * alpha + WHITE * (1.0 - alpha)

    return tf.switch_case(tf.clip_by_value(channels - 1, 0, 3), [gray, gray_alpha, rgb, rgba])


def pad_to_square(image: tf.Tensor) -> tf.Tensor:
    """Centre the image on a white square canvas (offsets rounded down, as in PIL's paste)."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.maximum(height, width)
    top = (side - height) // 2
    left = (side - width) // 2
    paddings = [[top, side - height - top], [left, side - width - left], [0, 0]]
    return tf.pad(image, paddings, constant_values=WHITE)


def decode_and_preprocess(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """One encoded JPEG/PNG/GIF/BMP string -> float32 [size, size, 3] RGB in 0..255.

    Non-images fail with TensorFlow's "Unknown image file format" InvalidArgumentError, which the
    server reports to the client as a 400.
    """
    tf.debugging.assert_greater(
        tf.strings.length(encoded), 0, message="empty image bytes: expected JPEG/PNG/GIF/BMP"
    )
    image = tf.io.decode_image(encoded, channels=0, expand_animations=False, dtype=tf.uint8)
    image = _to_rgb(image)
    image = pad_to_square(image)
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def preprocess_batch(images: tf.Tensor, size: int) -> tf.Tensor:
    """A [N] tf.string batch -> float32 [N, size, size, 3]."""
    return tf.map_fn(
        lambda encoded: decode_and_preprocess(encoded, size),
        images,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
    )
