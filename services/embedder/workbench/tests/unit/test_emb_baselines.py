"""Baseline registry: each architecture builds (random weights, test flag) and gives [N, D]."""

from __future__ import annotations

import numpy as np
import pytest

from embedder.baselines import registry
from embedder.baselines.preprocess import Preprocess
from embedder.errors import WeightsUnavailableError

CHEAP = ("mobilenet", "mobilenet_v2", "vgg16", "resnet50", "densenet121")
EXPENSIVE = tuple(
    n for n in registry.NAMES if n not in CHEAP and registry.SPECS[n].source == "keras"
)


def _build_and_run(name: str) -> None:
    spec = registry.SPECS[name]
    size = max(32, spec.min_input_size)
    model = registry.build_extractor(name, input_size=size, allow_random_weights=True)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    features = np.asarray(model(pixels, training=False))
    assert features.shape == (2, spec.dimension)
    assert np.all(np.isfinite(features))


def test_registry_lists_the_thirteen_baselines() -> None:
    assert len(registry.NAMES) == 13
    assert {"vgg16", "inception_resnet_v2", "mobilenet_v2", "efficientnet_lite0"} <= set(
        registry.NAMES
    )
    for spec in registry.SPECS.values():
        assert spec.min_input_size <= spec.input_size
        assert spec.source in {"keras", "tflite", "pytorch"}


@pytest.mark.parametrize("name", CHEAP)
def test_builds_at_tiny_size(name: str) -> None:
    _build_and_run(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPENSIVE)
def test_builds_at_tiny_size_expensive(name: str) -> None:
    _build_and_run(name)


@pytest.mark.parametrize("name", registry.NAMES)
def test_refuses_random_weights_without_the_test_flag(name: str) -> None:
    with pytest.raises(WeightsUnavailableError, match="random weights"):
        registry.build_extractor(name, input_size=registry.SPECS[name].input_size)


def test_rejects_inputs_below_the_architecture_minimum() -> None:
    with pytest.raises(ValueError, match=">= 75"):
        registry.build_extractor("inception_v3", input_size=64, allow_random_weights=True)


def test_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown baseline"):
        registry.build_extractor("alexnet", allow_random_weights=True)


def test_weights_dir_without_files_is_unavailable_with_a_reason(tmp_path) -> None:
    rows = registry.available(tmp_path)
    assert set(rows) == set(registry.NAMES)
    assert not rows["mobilenet_v2"].available
    assert "tf2_mobilenet_v2_1.0_224_ptq.tflite" in rows["mobilenet_v2"].reason
    assert not rows["vgg16"].available
    assert "weights='imagenet'" in rows["vgg16"].reason
    with pytest.raises(WeightsUnavailableError, match="vgg16_notop.h5"):
        registry.build_extractor("vgg16", weights=tmp_path, input_size=32)


def test_user_weights_file_is_found_and_loaded(tmp_path) -> None:
    donor = registry.build_extractor("vgg16", input_size=32, allow_random_weights=True)
    backbone = donor.layers[-1]
    backbone.save_weights(tmp_path / "vgg16_notop.weights.h5")
    assert registry.available(tmp_path)["vgg16"].available
    loaded = registry.build_extractor("vgg16", weights=tmp_path, input_size=32)
    pixels = np.full((1, 32, 32, 3), 128.0, np.float32)
    np.testing.assert_allclose(np.asarray(loaded(pixels)), np.asarray(donor(pixels)), rtol=1e-5)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("tf", [-1.0, 0.0, 1.0]),
        ("lite", [(0 - 127) / 128, (127.5 - 127) / 128, (255 - 127) / 128]),
        ("caffe", [255 - 103.939, 127.5 - 116.779, 0 - 123.68]),  # BGR order
        ("torch", [(0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1 - 0.406) / 0.225]),
    ],
)
def test_preprocessing_modes(mode: str, expected: list[float]) -> None:
    rgb = np.array([[[[0.0, 127.5, 255.0]]]], np.float32)
    out = np.asarray(Preprocess(mode)(rgb)).reshape(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_unknown_preprocessing_mode() -> None:
    with pytest.raises(ValueError, match="unknown preprocessing"):
        Preprocess("bgr")


def test_efficientnet_lite0_builds_at_tiny_size() -> None:
    _build_and_run("efficientnet_lite0")
