"""The default head exports with unit-norm output; the eval CLI end to end on 24 images."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from embedder.__main__ import main as embedder_main
from embedder.data.catalog import load_catalog, stratified_split, write_split
from embedder.heads.model import HeadConfig, build_head, fit_whitening, pooled_extractor
from embedder.models import build_gan
from embedder.servable import export_model

from .conftest import train_args

pytestmark = pytest.mark.slow

CLASSES = {
    "heels": ("shoes", (200, 30, 30)),
    "flats": ("shoes", (30, 30, 200)),
    "clutches": ("handbags", (30, 160, 30)),
}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 images, 3 classes in 2 categories, pairs of images sharing a title."""
    root = tmp_path_factory.mktemp("cat24")
    rng = np.random.default_rng(0)
    rows = []
    for label, (category, colour) in CLASSES.items():
        (root / "images" / label).mkdir(parents=True)
        for i in range(8):
            pixels = np.full((20, 16, 3), 255, np.uint8)
            pixels[4:16, 3:13] = np.clip(np.array(colour) + rng.integers(-20, 20, 3), 0, 255)
            path = f"images/{label}/{i}.jpg"
            Image.fromarray(pixels).save(root / path)
            rows.append(
                {
                    "path": path,
                    "class": label,
                    "category": category,
                    "product_title": f"{label} {i // 2}",
                }
            )
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_default_head_exports_unit_norm_vectors(tmp_path: Path) -> None:
    gan = build_gan("infogan", image_size=16, categorical_dim=2)
    config = HeadConfig(head="pool5-pca-colour", pca_dims=8)
    pixels = np.random.default_rng(0).uniform(0, 255, (20, 16, 16, 3)).astype(np.float32)
    whitening = fit_whitening(np.asarray(pooled_extractor(gan, config)(pixels)), 8, 0.35)
    extractor = build_head(gan, config, whitening)
    assert extractor.output_shape == (None, 8 + 128)
    version = export_model(extractor, input_size=16, model_base=tmp_path, name="g", warmup=False)
    fn = tf.saved_model.load(str(version)).signatures["serving_default"]
    blobs = []
    for seed in range(3):
        image = np.random.default_rng(seed).integers(0, 255, (24, 18, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    out = fn(images=tf.constant(blobs))["embedding"].numpy()
    assert out.shape == (3, 136)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="whitening"):
        build_head(gan, HeadConfig(head="pool5-pca"))


def test_eval_cli_end_to_end(catalogue: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train = train_args(
        catalogue, run, batch_size=4, max_steps=1, categorical_dim=2, no_progress=True
    )
    assert embedder_main(train) == 0
    base = tmp_path / "models"
    assert (
        embedder_main(["export", "--run", str(run), "--model-base", str(base), "--name", "infogan"])
        == 0
    )
    split = stratified_split(load_catalog(catalogue).items, test_fraction=0.25, seed=0)
    write_split(run / "split.json", split, seed=0, test_fraction=0.25, catalog=catalogue)
    out = tmp_path / "out"
    args = [
        "--catalog",
        str(catalogue),
        "--model-base",
        str(base),
        "--split-from",
        str(run / "split.json"),
        "--gan-run",
        str(run),
        "--variants-base",
        str(tmp_path / "variants"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--json",
        str(out / "e.json"),
        "--markdown",
        str(out / "e.md"),
        "--figures",
        str(out / "fig"),
        "--resamples",
        "50",
        "--latency-samples",
        "3",
        "--unseen",  # the fixture as the "other shop": the Berg default took 4 of 5 minutes
        str(catalogue),
        "--no-progress",
    ]
    assert embedder_main(["eval", *args]) == 0
    first = json.loads((out / "e.json").read_text())
    assert set(first["unseen"]) == {catalogue.name}
    assert "p@5" in first["unseen"][catalogue.name]["models"]["infogan"]["sets"]["all"]
    models = first["models"]
    assert {"infogan", "colour_hist", "infogan_pool5_pca", "random_infogan_pool5_pca"} <= set(
        models
    )
    test = models["infogan"]["sets"]["test"]
    assert test["queries"] == 6 and set(test["per_catalogue"]) == {"shoes", "handbags"}
    assert 0.0 <= test["p@5"] <= 1.0 and "excluding_same_title" in test
    assert "validation" in models["infogan"]["sets"]
    assert models["colour_hist"]["latency"]["batch1_p50_ms"] > 0
    for name in ("precision.png", "latency.png", "grid_infogan.png", "loss_curves.png"):
        assert (out / "fig" / name).stat().st_size > 0
    assert "p@5 [95 % CI]" in (out / "e.md").read_text()
    # second run: cached embeddings, identical numbers
    assert embedder_main(["eval", *args]) == 0
    second = json.loads((out / "e.json").read_text())
    assert second["models"]["infogan"]["embeddings_cached"] is True
    assert second["models"]["infogan"]["sets"] == first["models"]["infogan"]["sets"]
