"""Check an imported MobileNet against the TFLite interpreter it came from.

Agreement = same top-1 class on each image, and the Keras pooled features correlate with the
TFLite model's own pooled (dequantised) activations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from embedder.baselines import tflite_import

logger = logging.getLogger(__name__)


@dataclass
class Agreement:
    keras_top1: list[int] = field(default_factory=list)
    tflite_top1: list[int] = field(default_factory=list)
    feature_corr: list[float] = field(default_factory=list)

    @property
    def top1_matches(self) -> int:
        return sum(a == b for a, b in zip(self.keras_top1, self.tflite_top1, strict=True))

    @property
    def min_corr(self) -> float:
        return min(self.feature_corr)


def resize_uint8(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Centre-crop to square and resize to ``size`` (bilinear), as uint8 RGB [size, size, 3]."""
    import tensorflow as tf

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side, :3]
    resized = tf.image.resize(square[None].astype(np.float32), (size, size), antialias=True)
    return np.clip(np.round(resized.numpy()[0]), 0, 255).astype(np.uint8)


def _run(interp: Any, pixels: np.ndarray) -> np.ndarray:
    detail = interp.get_input_details()[0]
    interp.set_tensor(detail["index"], pixels[None].astype(detail["dtype"]))
    interp.invoke()
    out = interp.get_output_details()[0]
    return _float(interp, out["index"], interp.get_tensor(out["index"]))


def _float(interp: Any, index: int, raw: np.ndarray) -> np.ndarray:
    detail = next(d for d in interp.get_tensor_details() if d["index"] == index)
    scale, zero = detail["quantization"]
    return (raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32)


def _pooled_tensor(interp: Any) -> int:
    """Index of the pooled-feature tensor: output of the MEAN / AVERAGE_POOL_2D op."""
    for op in interp._get_ops_details():  # noqa: SLF001
        if op["op_name"] in ("MEAN", "AVERAGE_POOL_2D"):
            return int(op["outputs"][0])
    raise ValueError("no pooling op in the TFLite graph")


def tflite_predict(name: str, weights_dir: str | Path, image: np.ndarray) -> tuple[int, np.ndarray]:
    """(top-1 class, pooled features) from the original TFLite file(s) for a uint8 224 image."""
    source = tflite_import.SOURCES[name]
    body = tflite_import.interpreter(Path(weights_dir) / source.body_file, preserve=True)
    out = _run(body, image)
    pooled_idx = _pooled_tensor(body)
    features = _float(body, pooled_idx, body.get_tensor(pooled_idx)).reshape(-1)
    if source.head_file is not None:
        head = tflite_import.interpreter(Path(weights_dir) / source.head_file)
        detail = head.get_input_details()[0]
        raw = body.get_tensor(pooled_idx).reshape(detail["shape"])
        head.set_tensor(detail["index"], raw.astype(detail["dtype"]))
        head.invoke()
        o = head.get_output_details()[0]
        out = _float(head, o["index"], head.get_tensor(o["index"]))
    return int(np.argmax(out)), features


def compare(
    name: str,
    weights_dir: str | Path,
    images: list[np.ndarray],
    classifier: keras.Model,
) -> Agreement:
    """Top-1 and feature agreement between ``classifier`` (Keras import) and the TFLite model."""
    result = Agreement()
    pixels = np.stack([resize_uint8(img) for img in images])
    probs = np.asarray(classifier.predict(pixels.astype(np.float32), verbose=0))
    features_model = keras.Model(classifier.input, classifier.get_layer("logits").input)
    features = np.asarray(features_model.predict(pixels.astype(np.float32), verbose=0))
    for i, img in enumerate(pixels):
        top1, tfl_features = tflite_predict(name, weights_dir, img)
        result.tflite_top1.append(top1)
        result.keras_top1.append(int(np.argmax(probs[i])))
        result.feature_corr.append(float(np.corrcoef(features[i], tfl_features)[0, 1]))
    logger.info(
        "%s: top-1 agrees on %d/%d images, min feature r=%.4f",
        name,
        result.top1_matches,
        len(images),
        result.min_corr,
    )
    return result


def labels(weights_dir: str | Path) -> list[str]:
    """The 1001 ImageNet labels (index 0 = background)."""
    return (Path(weights_dir) / "imagenet_labels.txt").read_text().splitlines()
