"""``python -m embedder.baselines``: list, refusal without weights, and a real export."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from embedder.baselines import registry
from embedder.baselines.cli import main

ROOT = Path(__file__).resolve().parents[5]
WEIGHTS = ROOT.parent / "shared" / "weights" / "imagenet"


def test_list_reports_every_baseline(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="embedder.baselines"):
        assert main(["list", "--weights-dir", str(tmp_path)], configure=False) == 0
    text = caplog.text
    for name in registry.NAMES:
        assert name in text
    assert "missing tf2_mobilenet_v2_1.0_224_ptq.tflite" in text


def test_export_refuses_a_baseline_without_weights(tmp_path: Path) -> None:
    args = ["export", "--name", "vgg16", "--model-base", str(tmp_path)]
    code = main([*args, "--weights-dir", str(tmp_path)], configure=False)
    assert code == 2
    assert not (tmp_path / "vgg16").exists()


@pytest.mark.slow
def test_export_mobilenet_v2_from_shared_weights(tmp_path: Path) -> None:
    if not (WEIGHTS / "tf2_mobilenet_v2_1.0_224_ptq.tflite").is_file():
        pytest.skip(f"shared ImageNet weights not found at {WEIGHTS}")
    args = ["export", "--name", "mobilenet_v2", "--model-base", str(tmp_path / "models")]
    args += ["--weights-dir", str(WEIGHTS), "--input-size", "32"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    assert main(args, configure=False) == 0
    assert (tmp_path / "models" / "mobilenet_v2" / "1" / "saved_model.pb").is_file()
    assert 'name: "mobilenet_v2"' in (tmp_path / "models" / "models.config").read_text()
    assert list((tmp_path / "cache").glob("mobilenet_v2-*.npz"))
