"""In-model input normalisation, so every extractor takes RGB 0..255 like the export contract."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

# Keras applications' ``preprocess_input`` modes, plus EfficientNet-Lite's (x - 127) / 128.
MODES = ("tf", "caffe", "torch", "lite")
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="fashionrec")
class Preprocess(keras.layers.Layer):
    """Maps float RGB 0..255 to what a backbone was trained on.

    ``tf``: x / 127.5 - 1 (MobileNets, Inception); ``caffe``: RGB -> BGR minus the ImageNet
    mean (VGG, ResNet); ``torch``: x / 255 standardised per channel (DenseNet);
    ``lite``: (x - 127) / 128 (EfficientNet-Lite).
    """

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; expected one of {MODES}")
        self.mode = mode

    def call(self, x: Any) -> Any:
        x = ops.cast(x, "float32")
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "lite":
            return (x - 127.0) / 128.0
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR)
        mean = ops.convert_to_tensor(_TORCH_MEAN)
        std = ops.convert_to_tensor(_TORCH_STD)
        return (x / 255.0 - mean) / std

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}
