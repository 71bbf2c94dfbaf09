"""Fine-tuned baselines: a head trained on ``category`` only, exported as ``<name>_ft``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from embedder.baselines.cli import main
from embedder.baselines.finetune import FinetuneResult, finetune
from embedder.errors import CatalogError

SIZE = 32
# Bright vs dark images: separable even through a random-weights backbone. VGG16, because the
# random BatchNorm stacks of the MobileNets / EfficientNet shrink features to ~1e-12.
COLOURS = {"shoes": (235, 220, 200), "handbags": (25, 30, 60)}


def make_catalog(root: Path, *, with_category: bool = True, per_category: int = 8) -> Path:
    """Images of two categories; ``class`` is one constant value, so it cannot be the target."""
    rng = np.random.default_rng(0)
    rows = []
    for category, colour in COLOURS.items():
        (root / "images" / category).mkdir(parents=True)
        for i in range(per_category):
            noise = rng.integers(-20, 20, (24, 20, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            path = f"images/{category}/{i}.png"
            Image.fromarray(pixels).save(root / path)
            rows.append(f"{path},{category},thing" if with_category else f"{path},thing")
    header = "path,category,class" if with_category else "path,class"
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def write_split(catalog: Path, out: Path) -> Path:
    """All but one image per category in train; the held-out ones must never be read."""
    paths = sorted(str(p.relative_to(catalog)) for p in catalog.rglob("*.png"))
    test = [p for p in paths if p.endswith("/0.png")]
    split = {"train": [p for p in paths if p not in test], "test": test}
    out.write_text(json.dumps(split))
    return out


def finetune_from_random(
    name: str, catalog: Path, split: Path, models: Path, **options: Any
) -> FinetuneResult:
    """``finetune`` from random backbone weights (nothing to download) at ``SIZE`` px."""
    return finetune(
        name,
        weights=None,
        allow_random_weights=True,
        input_size=SIZE,
        catalog=catalog,
        split_from=split,
        model_base=models,
        **options,
    )


@pytest.mark.slow
def test_head_trains_on_category_and_exports_unit_vectors(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path / "catalog")
    split = write_split(catalog, tmp_path / "split.json")
    result = finetune_from_random(
        "vgg16", catalog, split, tmp_path / "models", epochs=40, progress=False, warmup=False
    )
    assert result.version_dir == tmp_path / "models" / "vgg16_ft" / "1"
    head = result.metadata["head"]
    assert head["target"] == "category" and head["categories"] == ["handbags", "shoes"]
    assert head["n_images"] == 14 and head["epochs"] == 40
    assert head["train_accuracy"] >= 0.9

    info = json.loads((result.version_dir / "assets.extra" / "embedder.json").read_text())
    assert info["dimension"] == 256 and info["head"]["train_accuracy"] == head["train_accuracy"]
    assert 'name: "vgg16_ft"' in (tmp_path / "models" / "models.config").read_text()

    fn = tf.saved_model.load(str(result.version_dir)).signatures["serving_default"]
    files = sorted(catalog.rglob("*.png"))[:5]
    served = fn(images=tf.constant([f.read_bytes() for f in files]))["embedding"].numpy()
    assert served.shape == (5, 256)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-4)


def test_catalogue_without_category_is_a_clear_error(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path / "catalog", with_category=False, per_category=2)
    split = write_split(catalog, tmp_path / "split.json")
    with pytest.raises(CatalogError, match="no 'category' column"):
        finetune_from_random("mobilenet_v2", catalog, split, tmp_path / "models")
    args = ["finetune", "--name", "mobilenet_v2", "--catalog", str(catalog)]
    args += ["--split-from", str(split), "--model-base", str(tmp_path / "models")]
    assert main(args, configure=False) == 2
    assert not (tmp_path / "models").exists()
