"""Export an image feature extractor as a TF Serving servable and keep ``models.config`` current.

Layout (TF Serving's model repository)::

    MODEL_BASE/models.config                       model_config_list, one entry per model dir
    MODEL_BASE/<name>/<version>/saved_model.pb     signature serving_default: images -> embedding
    MODEL_BASE/<name>/<version>/variables/
    MODEL_BASE/<name>/<version>/assets.extra/tf_serving_warmup_requests
    MODEL_BASE/<name>/<version>/assets.extra/embedder.json   (input size, dimension; informative)

A version is written under a hidden temporary name and renamed into place, so a server polling
the directory never loads a half-written version.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from embedder.image_guard import DEFAULT_MAX_PIXELS
from embedder.repository import next_version
from embedder.tf_preprocess import preprocess_batch

logger = logging.getLogger(__name__)

SIGNATURE = "serving_default"
INPUT_KEY = "images"
OUTPUT_KEY = "embedding"
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_RECORDS = 2


class _Servable(tf.Module):
    """Holds the extractor so its variables are saved, plus the bytes -> embedding function."""

    def __init__(
        self, extractor: keras.Model, input_size: int, max_pixels: int, object_crop: bool
    ) -> None:
        super().__init__(name="embedder")
        self.extractor = extractor
        self.input_size = input_size
        self.max_pixels = max_pixels
        self.object_crop = object_crop
        self.dimension = feature_dimension(extractor, input_size)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)])
    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = preprocess_batch(images, self.input_size, self.max_pixels, self.object_crop)
        features = self.extractor(pixels, training=False)
        features = tf.reshape(tf.cast(features, tf.float32), [-1, self.dimension])
        return {OUTPUT_KEY: tf.math.l2_normalize(features, axis=1, epsilon=1e-12)}


def feature_dimension(extractor: keras.Model, input_size: int) -> int:
    """Flattened feature size of ``extractor`` at ``input_size`` (static, for the signature)."""
    shape = extractor.compute_output_shape((1, input_size, input_size, 3))
    dim = 1
    for value in shape[1:]:
        dim *= int(value)
    return dim


def white_jpeg(size: int = 32) -> bytes:
    """A small encoded white JPEG, used for warm-up requests."""
    pixels = tf.fill([size, size, 3], tf.constant(255, tf.uint8))
    return bytes(tf.io.encode_jpeg(pixels).numpy())


def write_warmup(path: Path, model_name: str, records: int = WARMUP_RECORDS) -> None:
    """TF Serving warm-up: a TFRecord of PredictionLog with Predict requests on a white JPEG."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(records):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = SIGNATURE
            request.inputs[INPUT_KEY].CopyFrom(tf.make_tensor_proto([white_jpeg()], tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def model_dirs(model_base: Path) -> list[Path]:
    """Model directories under ``model_base``: those holding at least one numeric version."""
    found = []
    for child in sorted(model_base.iterdir()) if model_base.is_dir() else []:
        if child.is_dir() and any(v.is_dir() and v.name.isdigit() for v in child.iterdir()):
            found.append(child)
    return found


def write_models_config(model_base: Path) -> Path:
    """Rewrite ``MODEL_BASE/models.config`` listing every model dir (absolute base paths)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for model_dir in model_dirs(model_base):
        entry = config.model_config_list.config.add()
        entry.name = model_dir.name
        entry.base_path = str(model_dir.resolve())
        entry.model_platform = "tensorflow"
    path = model_base / "models.config"
    tmp = path.with_name(".models.config.tmp")
    tmp.write_text(text_format.MessageToString(config))
    tmp.replace(path)
    return path


def export_model(
    extractor: keras.Model,
    *,
    input_size: int,
    model_base: str | Path,
    name: str,
    version: int | None = None,
    warmup: bool = True,
    metadata: dict[str, Any] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    object_crop: bool = False,
) -> Path:
    """Save ``extractor`` (float32 [N, S, S, 3] RGB 0..255 -> [N, D]) as ``name``/``version``.

    The servable decodes and preprocesses image bytes in the graph and L2-normalises the output.
    ``max_pixels`` is baked into the graph: larger images (by their header) are refused before
    decoding, as TF Serving runs the graph on untrusted bytes. ``object_crop`` frames each image
    on its product first (``embedder.data.images``), also in the graph.
    Returns the version directory. ``version=None`` picks max existing + 1.
    """
    model_base = Path(model_base)
    model_dir = model_base / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else int(version)
    target = model_dir / str(version)
    if target.exists():
        raise FileExistsError(f"{target} already exists; pick another --version")
    tmp = model_dir / f".tmp-{version}"
    shutil.rmtree(tmp, ignore_errors=True)

    servable = _Servable(extractor, input_size, max_pixels, object_crop)
    serve = servable.serve.get_concrete_function()
    dim = servable.dimension
    tf.saved_model.save(servable, str(tmp), signatures={SIGNATURE: serve})
    extra = tmp / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    if warmup:
        write_warmup(extra / WARMUP_FILE, name)
    info = {"name": name, "version": version, "input_size": input_size, "dimension": dim}
    info["max_pixels"] = max_pixels
    info["object_crop"] = object_crop
    info.update(metadata or {})
    (extra / "embedder.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    tmp.rename(target)
    write_models_config(model_base)
    logger.info("exported %s version %d (dim %d) to %s", name, version, dim, target)
    return target


def describe_signature(version_dir: str | Path) -> str:
    """A short text description of the serving signature (what ``saved_model_cli show`` lists)."""
    loaded = tf.saved_model.load(str(version_dir))
    fn = loaded.signatures[SIGNATURE]
    out = io.StringIO()
    out.write(f"signature {SIGNATURE}\n")
    for key, spec in fn.structured_input_signature[1].items():
        out.write(f"  input  {key}: {spec.dtype.name} {spec.shape}\n")
    for key, spec in fn.structured_outputs.items():
        out.write(f"  output {key}: {spec.dtype.name} {spec.shape}\n")
    return out.getvalue()
