"""The CLI end to end at 16 px: train 2 steps, resume, export, reload the SavedModel."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from embedder.__main__ import main
from embedder.data.images import load_image
from embedder.models import build_gan, embedding_extractor
from embedder.servable import WARMUP_FILE, export_model, next_version

from .conftest import train_args

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 usable images in two classes plus one corrupt file that must be skipped."""
    root = tmp_path_factory.mktemp("catalog")
    rng = np.random.default_rng(0)
    for label in ("boots", "bags"):
        (root / "images" / label).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 255, (20, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "images" / label / f"{i}.png")
    (root / "images" / "bags" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


@pytest.fixture(scope="module")
def run(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    args = train_args(
        catalog,
        out,
        batch_size=2,
        max_steps=2,
        test_fraction=0.25,
        checkpoint_every=1,
        sample_every=1,
        categorical_dim=3,
    )
    assert main(args) == 0
    return out


def test_train_writes_artifacts(run: Path) -> None:
    summary = json.loads((run / "run.json").read_text())
    assert summary["steps"] == 2 and summary["checkpoint_rule"].startswith("last")
    assert summary["skipped_images"] and summary["embedding_dim"] == 4 * 16
    rows = list(csv.DictReader(io.StringIO((run / "metrics.csv").read_text())))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert all(np.isfinite(float(r["d_loss"])) for r in rows)
    for name in ("loss_curves.png", "samples_final.png", "samples_step000001.png"):
        with Image.open(run / name) as image:
            assert image.size[0] > 50
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-2")
    split = json.loads((run / "split.json").read_text())
    assert split["seed"] == 0 and len(split["test"]) == 2
    assert not set(split["test"]) & set(split["train"])


def test_resume_continues_step_count(run: Path, catalog: Path, tmp_path: Path) -> None:
    resumed = tmp_path / "resumed"
    import shutil

    shutil.copytree(run, resumed)
    args = train_args(
        catalog, resumed, batch_size=2, max_steps=4, categorical_dim=3, no_progress=True
    )
    assert main(args) == 0
    rows = list(csv.DictReader(io.StringIO((resumed / "metrics.csv").read_text())))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert json.loads((resumed / "run.json").read_text())["steps"] == 4


def test_rotation_on_augmented_views_trains_and_is_recorded(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "rotaug"
    options = {"batch_size": 2, "max_steps": 2, "categorical_dim": 3, "no_progress": True}
    assert main(train_args(catalog, out, rotation_augment=True, **options)) == 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["config"]["rotation_augment"] is True and summary["steps"] == 2
    rows = list(csv.DictReader(io.StringIO((out / "metrics.csv").read_text())))
    assert all(float(r["rotation"]) > 0 for r in rows)  # the SS loss ran on every step


@pytest.mark.parametrize("augmented", [False, True])
def test_rotation_augment_decides_whether_rotation_sees_augmented_views(
    tmp_path: Path, augmented: bool
) -> None:
    """With contrastive and DiffAugment off, the rotation task is the only user of an
    augmented view: traced once with the flag, never without (the flag is not ignored)."""
    from embedder.train import TrainConfig, Trainer

    config = TrainConfig(catalog=str(tmp_path), out=str(tmp_path / "run"), image_size=16,
                         categorical_dim=3, batch_size=2, rotation_augment=augmented)  # fmt: skip
    trainer = Trainer(config)
    views: list[tuple[int, ...]] = []
    real_view = trainer._view

    def spy(images: tf.Tensor) -> tf.Tensor:
        views.append(tuple(images.shape))
        return real_view(images)

    trainer._view = spy  # type: ignore[method-assign]
    batch = tf.random.uniform((2, 16, 16, 3), 0, 255)
    out = trainer.train_step(batch)
    assert float(out["rotation"]) > 0
    assert views == ([(2, 16, 16, 3)] if augmented else [])


def test_export_reload_signature_and_parity(run: Path, catalog: Path, tmp_path: Path) -> None:
    base = tmp_path / "models"
    flat = ["--head", "flat"]  # the paper's map: comparable with embedding_extractor below
    exported = ["export", "--run", str(run), "--model-base", str(base), "--name", "infogan"]
    assert main([*exported, *flat]) == 0
    assert (
        main(
            [
                "export",
                "--random",
                "--image-size",
                "16",
                "--categorical-dim",
                "3",
                "--model-base",
                str(base),
                "--name",
                "random_infogan",
                *flat,
            ]
        )
        == 0
    )
    version = base / "infogan" / "1"
    assert (version / "saved_model.pb").is_file()
    config = (base / "models.config").read_text()
    assert 'name: "infogan"' in config and 'name: "random_infogan"' in config
    assert 'model_platform: "tensorflow"' in config

    loaded = tf.saved_model.load(str(version))
    fn = loaded.signatures["serving_default"]
    (_, inputs) = fn.structured_input_signature
    assert list(inputs) == ["images"] and inputs["images"].dtype == tf.string
    assert inputs["images"].shape.as_list() == [None]
    assert list(fn.structured_outputs) == ["embedding"]
    assert fn.structured_outputs["embedding"].dtype == tf.float32
    assert fn.structured_outputs["embedding"].shape.as_list() == [None, 64]

    files = sorted((catalog / "images").rglob("*.png"))[:3]
    served = fn(images=tf.constant([f.read_bytes() for f in files]))["embedding"].numpy()
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-4)

    # The same D weights on the PIL path (as training and evaluation see images).
    from embedder.train import load_trained

    gan, _ = load_trained(run)
    pixels = np.stack([load_image(f, 16) for f in files]).astype(np.float32)
    direct = embedding_extractor(gan)(pixels, training=False).numpy()
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    assert (np.sum(direct * served, axis=1) > 0.98).all()

    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(images=tf.constant([b"not an image"]))


def test_warmup_requests_and_versions(tmp_path: Path) -> None:
    from tensorflow_serving.apis import prediction_log_pb2

    gan = build_gan("dcgan", image_size=16)
    first = export_model(embedding_extractor(gan), input_size=16, model_base=tmp_path, name="dcgan")
    second = export_model(
        embedding_extractor(gan), input_size=16, model_base=tmp_path, name="dcgan"
    )
    assert (first.name, second.name) == ("1", "2") and next_version(tmp_path / "dcgan") == 3
    with pytest.raises(FileExistsError):
        export_model(
            embedding_extractor(gan), input_size=16, model_base=tmp_path, name="dcgan", version=2
        )
    records = list(tf.data.TFRecordDataset(str(first / "assets.extra" / WARMUP_FILE)))
    assert records
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    request = log.predict_log.request
    assert request.model_spec.name == "dcgan"
    assert request.model_spec.signature_name == "serving_default"
    with Image.open(io.BytesIO(request.inputs["images"].string_val[0])) as image:
        assert image.format == "JPEG"
    assert not list(tmp_path.glob("dcgan/.tmp-*"))


def test_dcgan_trains_and_exports(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "dcgan"
    options = {"model": "dcgan", "batch_size": 2, "max_steps": 1, "no_progress": True}
    assert main(train_args(catalog, out, **options)) == 0
    rows = list(csv.DictReader(io.StringIO((out / "metrics.csv").read_text())))
    assert len(rows) == 1 and float(rows[0]["info_loss"]) == 0.0
    assert (
        main(
            [
                "export",
                *("--run", str(out), "--model-base", str(tmp_path / "m"), "--name", "dcgan"),
                *("--head", "flat"),
            ]
        )
        == 0
    )
    fn = tf.saved_model.load(str(tmp_path / "m" / "dcgan" / "1")).signatures["serving_default"]
    assert fn.structured_outputs["embedding"].shape.as_list() == [None, 256]
    # A run dir belongs to one architecture.
    assert main(train_args(catalog, out, **(options | {"model": "infogan"}))) == 2


def test_default_export_is_the_served_default_head(run: Path, tmp_path: Path) -> None:
    """``python -m embedder export`` with no --head exports what the demo serves."""
    from embedder.heads.model import DEFAULT_HEAD

    base = tmp_path / "models"
    assert main(["export", "--run", str(run), "--model-base", str(base), "--name", "infogan"]) == 0
    meta = json.loads((base / "infogan" / "1" / "assets.extra" / "embedder.json").read_text())
    assert meta["head"]["head"] == DEFAULT_HEAD
    assert meta["run_status"] == "finished" and meta["pca_fit_images"] > 0
    # The random control needs somewhere to fit its whitening: a clear error, not a crash.
    assert main(["export", "--random", "--model-base", str(base), "--name", "r"]) == 2


def test_object_framing_is_served_in_the_graph_and_recorded(tmp_path: Path) -> None:
    """``--framing object``: the servable crops to the product as the PIL path does."""
    pixels = np.full((60, 80, 3), 255, np.uint8)
    pixels[30:50, 10:40] = np.arange(30, dtype=np.uint8)[None, :, None] * 6  # off-centre product
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    gan = build_gan("dcgan", image_size=16)
    extractor = embedding_extractor(gan)
    vectors = {}
    for crop in (False, True):
        version = export_model(
            extractor, input_size=16, model_base=tmp_path, name=f"m{crop}", object_crop=crop
        )
        info = json.loads((version / "assets.extra" / "embedder.json").read_text())
        assert info["object_crop"] is crop
        fn = tf.saved_model.load(str(version)).signatures["serving_default"]
        served = fn(images=tf.constant([buf.getvalue()]))["embedding"].numpy()[0]
        direct = extractor(
            load_image(buf.getvalue(), 16, object_crop=crop)[None].astype(np.float32),
            training=False,
        ).numpy()[0]
        assert np.dot(served, direct / np.linalg.norm(direct)) > 0.98
        vectors[crop] = served
    assert np.dot(vectors[False], vectors[True]) < 0.98  # the framing changed the embedding
