"""A tiny SavedModel with the embedder contract, for tests and benchmarks (no training needed).

``serving_default``: ``images`` tf.string [None] -> ``embedding`` float32 [None, dim], decoded
(after the export's header checks, ``embedder.image_guard``), padded, resized to ``size`` px inside
the graph; ``pixels``: float32 [None, size, size, 3] input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from embedder.image_guard import DEFAULT_MAX_PIXELS, guarded_decode
from embedder_server.adapters.servable import WARMUP_FILE


class _Toy(tf.Module):
    def __init__(self, size: int, dim: int, seed: int, max_pixels: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.size = size
        self.max_pixels = max_pixels
        self.w = tf.Variable(rng.standard_normal((size * size * 3, dim)).astype("float32"))

    def _embed(self, pixels: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(pixels / 255.0, [tf.shape(pixels)[0], -1])
        return tf.math.l2_normalize(tf.matmul(flat, self.w) + 1e-6, axis=1)

    def _decode(self, data: tf.Tensor) -> tf.Tensor:
        img = guarded_decode(data, self.max_pixels, channels=3)
        img = tf.image.resize_with_pad(img, self.size, self.size)  # reads uint8: no float copy
        return tf.ensure_shape(img, [self.size, self.size, 3])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve_images(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = tf.map_fn(self._decode, images, fn_output_signature=tf.float32)
        return {"embedding": self._embed(pixels)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="pixels")])
    def serve_pixels(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        resized = tf.image.resize(pixels, [self.size, self.size])
        return {"embedding": self._embed(resized), "mean": tf.reduce_mean(pixels, [1, 2, 3])}


def png_bytes(seed: int = 0, size: int = 12) -> bytes:
    """A small random RGB PNG."""
    rng = np.random.default_rng(seed)
    return tf.io.encode_png(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).numpy()


def write_warmup(version_dir: Path, model_name: str, count: int = 2) -> None:
    """``assets.extra/tf_serving_warmup_requests`` with ``count`` PredictionLog records."""
    path = version_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
            )
            request.inputs["images"].CopyFrom(tf.make_tensor_proto([png_bytes(i)]))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def export_toy_model(
    model_base: Path,
    name: str,
    version: int,
    *,
    size: int = 8,
    dim: int = 16,
    warmup: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Path:
    """Write ``model_base/name/version``; the seed depends on the version so outputs differ."""
    module = _Toy(size, dim, seed=version * 1000 + len(name), max_pixels=max_pixels)
    target = model_base / name / str(version)
    tf.saved_model.save(
        module,
        str(target),
        signatures={
            "serving_default": module.serve_images.get_concrete_function(),
            "pixels": module.serve_pixels.get_concrete_function(),
        },
    )
    if warmup:
        write_warmup(target, name)
    return target


def write_toy_models_config(model_base: Path, names: list[str], extra: str = "") -> Path:
    """``models.config`` listing ``names`` (``extra`` is appended inside each config block)."""
    blocks = "".join(
        f'  config {{ name: "{n}" base_path: "{model_base / n}" model_platform: "tensorflow" '
        f"{extra} }}\n"
        for n in names
    )
    path = model_base / "models.config"
    path.write_text(f"model_config_list {{\n{blocks}}}\n")
    return path
