"""The TFLite-imported MobileNets: sensible ImageNet classes and agreement with the interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedder.baselines import registry, tflite_import, verify

ROOT = Path(__file__).resolve().parents[5]
WEIGHTS = ROOT.parent / "shared" / "weights" / "imagenet"

pytestmark = pytest.mark.skipif(
    not (WEIGHTS / "tf2_mobilenet_v2_1.0_224_ptq.tflite").is_file(),
    reason=f"shared ImageNet weights not found at {WEIGHTS}",
)
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photos")

CAT_CLASSES = {
    "tabby, tabby cat",
    "tiger cat",
    "Egyptian cat",
    "Persian cat",
    "Siamese cat, Siamese",
}
COFFEE_CLASSES = {"espresso", "cup", "coffee mug", "eggnog"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("weights-cache")


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [skimage_data.chelsea(), skimage_data.coffee()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet"])
def test_imported_mobilenet_classifies_photos_like_tflite(
    name: str, cache_dir: Path, photos: list[np.ndarray]
) -> None:
    classifier = registry.build_classifier(name, WEIGHTS, cache_dir=cache_dir)
    labels = verify.labels(WEIGHTS)
    result = verify.compare(name, WEIGHTS, photos, classifier)
    cat, coffee = (labels[i] for i in result.keras_top1)
    assert cat in CAT_CLASSES
    assert coffee in COFFEE_CLASSES
    assert result.keras_top1 == result.tflite_top1
    assert result.min_corr > 0.98
    probs = np.asarray(classifier(verify.resize_uint8(photos[0])[None].astype(np.float32)))
    assert probs.shape == (1, tflite_import.NUM_CLASSES)
    cat_mass = sum(float(probs[0, labels.index(c)]) for c in CAT_CLASSES)
    assert cat_mass > 0.5  # confident that it is some cat, not only top-1 by a hair


def test_extractor_is_cached_and_size_independent(cache_dir: Path) -> None:
    first = registry.build_extractor("mobilenet_v2", WEIGHTS, input_size=32, cache_dir=cache_dir)
    cached = list(cache_dir.glob("mobilenet_v2-*.npz"))
    assert len(cached) == 1
    second = registry.build_extractor("mobilenet_v2", WEIGHTS, input_size=32, cache_dir=cache_dir)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    a, b = np.asarray(first(pixels)), np.asarray(second(pixels))
    assert a.shape == (2, 1280)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert registry.available(WEIGHTS)["mobilenet_v2"].available


def test_dequantised_kernels_have_keras_layout() -> None:
    convs = tflite_import.read_convs(WEIGHTS / "tf2_mobilenet_v2_1.0_224_ptq.tflite")
    op, kernel, bias = convs[0]
    assert op == "CONV_2D"
    assert kernel.shape == (3, 3, 3, 32)
    assert bias.shape == (32,)
    assert kernel.dtype == np.float32
    assert 0 < float(np.abs(kernel).max()) < 100
    depthwise = next(k for o, k, _ in convs if o == "DEPTHWISE_CONV_2D")
    assert depthwise.shape == (3, 3, 32, 1)
