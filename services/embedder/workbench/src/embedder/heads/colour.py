"""A non-learned colour embedding computed in-graph: an HSV histogram of the non-white pixels.

8 hue x 4 saturation x 4 value bins = 128 values, square-rooted (Hellinger) so that an L2
distance compares distributions sensibly. Near-white pixels (the studio background: saturation
< 0.1 and value > 0.9) are ignored. Written with TF ops so that it exports with the model.
"""

from __future__ import annotations

import keras
import tensorflow as tf

HUE_BINS, SAT_BINS, VAL_BINS = 8, 4, 4
BINS = HUE_BINS * SAT_BINS * VAL_BINS


class ColourHistogram(keras.layers.Layer):
    """float32 [N, S, S, 3] RGB 0..255 -> sqrt-normalised HSV histogram [N, 128]."""

    def call(self, pixels: tf.Tensor) -> tf.Tensor:
        hsv = tf.image.rgb_to_hsv(tf.clip_by_value(pixels, 0.0, 255.0) / 255.0)
        h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
        foreground = tf.cast(tf.logical_not((s < 0.1) & (v > 0.9)), tf.float32)

        def index(x: tf.Tensor, bins: int) -> tf.Tensor:
            return tf.minimum(tf.cast(x * bins, tf.int32), bins - 1)

        bin_id = (
            index(h, HUE_BINS) * SAT_BINS * VAL_BINS
            + index(s, SAT_BINS) * VAL_BINS
            + index(v, VAL_BINS)
        )
        counts = tf.reduce_sum(tf.one_hot(bin_id, BINS) * foreground[..., None], axis=[1, 2])
        total = tf.maximum(tf.reduce_sum(counts, axis=1, keepdims=True), 1.0)
        return tf.sqrt(counts / total)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], BINS)


def colour_extractor(input_size: int = 64, name: str = "colour_hist") -> keras.Model:
    """The export-contract extractor for the colour-histogram floor baseline."""
    pixels = keras.Input((input_size, input_size, 3), name="pixels")
    return keras.Model(pixels, ColourHistogram(name="hsv_hist")(pixels), name=name)
