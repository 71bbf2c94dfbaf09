"""Import the ImageNet MobileNets from quantised TFLite files into float Keras models.

Keras cannot download ``weights="imagenet"`` here, but ``../shared/weights/imagenet`` holds
MobileNetV2 and MobileNet (V1) as TFLite files. Their convolutions have BatchNorm folded into a
bias, so we dequantise each kernel and bias (per-channel scales), copy them in op order into
``keras.applications`` models, and set every BatchNorm to ``x + bias``. The converted arrays are
cached as ``.npz`` (keyed by the file's hash) so later builds skip the TFLite parse.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

logger = logging.getLogger(__name__)

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
NUM_CLASSES = 1001  # index 0 is "background"


@dataclass(frozen=True)
class TfliteSource:
    """Where one architecture's TFLite weights live and which Keras application receives them."""

    name: str
    body_file: str
    head_file: str | None  # classifier in a separate file (MobileNet V1)
    application: str  # attribute of keras.applications


SOURCES: dict[str, TfliteSource] = {
    "mobilenet_v2": TfliteSource(
        "mobilenet_v2", "tf2_mobilenet_v2_1.0_224_ptq.tflite", None, "MobileNetV2"
    ),
    "mobilenet": TfliteSource(
        "mobilenet",
        "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite",
        "mobilenet_quant_v1_224_head_layers.tflite",
        "MobileNet",
    ),
}


@dataclass
class ImportedWeights:
    """Float weights in Keras layout: one (kernel, bias) per conv layer, plus the 1001-way head."""

    convs: list[tuple[np.ndarray, np.ndarray]]
    head_kernel: np.ndarray  # [D, 1001]
    head_bias: np.ndarray  # [1001]


def interpreter(path: str | Path, *, preserve: bool = False) -> Any:
    """A ``tf.lite.Interpreter`` (its deprecation warning silenced: LiteRT is not installed)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(
            model_path=str(path), experimental_preserve_all_tensors=preserve
        )
    interp.allocate_tensors()
    return interp


def _dequantise(interp: Any, detail: dict[str, Any]) -> np.ndarray:
    """Float values of a constant tensor: (q - zero_point) * scale, per channel where given."""
    raw = interp.get_tensor(detail["index"]).astype(np.float64)
    params = detail["quantization_parameters"]
    scales = np.asarray(params["scales"], dtype=np.float64)
    zeros = np.asarray(params["zero_points"], dtype=np.float64)
    if scales.size == 0:  # not quantised
        return raw.astype(np.float32)
    if scales.size > 1:
        shape = [1] * raw.ndim
        shape[params["quantized_dimension"]] = scales.size
        scales, zeros = scales.reshape(shape), zeros.reshape(shape)
    return ((raw - zeros) * scales).astype(np.float32)


def read_convs(path: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op, kernel, bias) for every conv op in execution order, kernels in Keras layout.

    TFLite CONV_2D kernels are [out, kh, kw, in] and depthwise ones [1, kh, kw, C]; Keras wants
    [kh, kw, in, out] and [kh, kw, C, 1], which is the same transpose for both.
    """
    interp = interpreter(path)
    details = {d["index"]: d for d in interp.get_tensor_details()}
    convs = []
    for op in interp._get_ops_details():  # noqa: SLF001 - the only public op listing
        if op["op_name"] not in CONV_OPS:
            continue
        _, w_idx, b_idx = op["inputs"][:3]
        kernel = _dequantise(interp, details[w_idx]).transpose(1, 2, 3, 0)
        bias = _dequantise(interp, details[b_idx])
        convs.append((op["op_name"], kernel, bias))
    return convs


def import_weights(name: str, weights_dir: str | Path) -> ImportedWeights:
    """Dequantise one architecture's TFLite files into float arrays."""
    source = SOURCES[name]
    convs = read_convs(Path(weights_dir) / source.body_file)
    if source.head_file is not None:
        convs += read_convs(Path(weights_dir) / source.head_file)
    _, head, head_bias = convs.pop()
    if head.shape[-1] != NUM_CLASSES:
        raise ValueError(f"{name}: last conv has {head.shape[-1]} outputs, not {NUM_CLASSES}")
    return ImportedWeights(
        convs=[(k, b) for _, k, b in convs],
        head_kernel=head.reshape(-1, NUM_CLASSES),
        head_bias=head_bias,
    )


def _file_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_weights(
    name: str, weights_dir: str | Path, cache_dir: str | Path | None = None
) -> ImportedWeights:
    """``import_weights`` through an ``.npz`` cache keyed by the TFLite files' SHA-256."""
    if cache_dir is None:
        return import_weights(name, weights_dir)
    source = SOURCES[name]
    files = [Path(weights_dir) / source.body_file]
    if source.head_file:
        files.append(Path(weights_dir) / source.head_file)
    cache = Path(cache_dir) / f"{name}-{_file_digest(files)}.npz"
    if cache.exists():
        with np.load(cache) as data:
            count = int(data["count"])
            convs = [(data[f"k{i}"], data[f"b{i}"]) for i in range(count)]
            return ImportedWeights(convs, data["head_kernel"], data["head_bias"])
    imported = import_weights(name, weights_dir)
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"k{i}": k for i, (k, _) in enumerate(imported.convs)}
    arrays.update({f"b{i}": b for i, (_, b) in enumerate(imported.convs)})
    tmp = cache.with_name(f".{cache.stem}.tmp.npz")
    np.savez(
        tmp,
        count=len(imported.convs),
        head_kernel=imported.head_kernel,
        head_bias=imported.head_bias,
        **arrays,
    )
    tmp.replace(cache)
    logger.info("cached converted %s weights at %s", name, cache)
    return imported


def load_into_backbone(backbone: keras.Model, convs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Copy kernels in layer order; each conv's BatchNorm becomes identity plus the folded bias."""
    conv_layers = [
        layer
        for layer in backbone.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
    ]
    bn_layers = [
        layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not len(conv_layers) == len(bn_layers) == len(convs):
        raise ValueError(
            f"{backbone.name}: {len(conv_layers)} convs, {len(bn_layers)} BatchNorms, "
            f"{len(convs)} imported kernels; architectures differ"
        )
    for conv, bn, (kernel, bias) in zip(conv_layers, bn_layers, convs, strict=True):
        expected = tuple(conv.get_weights()[0].shape)
        if kernel.shape != expected:
            raise ValueError(f"{conv.name}: kernel {kernel.shape} != {expected}")
        conv.set_weights([kernel])
        ones = np.ones_like(bias)
        # gamma * (x - mean) / sqrt(var + eps) + beta == x + bias
        bn.set_weights([ones, bias, np.zeros_like(bias), ones - bn.epsilon])
