"""How `explore` names a run: every setting that changes what D learns, and the pace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedder.evaluation.explore import _pixels, describe, random_size


def write_run(run: Path, steps: int, seconds: float, **config: object) -> str:
    run.mkdir()
    base = {"model": "infogan", "image_size": 64, "dropout": 0.1, "rotation_weight": 1.0}
    summary = {"steps": steps, "train_seconds": seconds, "config": {**base, **config}}
    (run / "run.json").write_text(json.dumps(summary))
    return str(run)


def test_description_names_rotation_views_generator_and_pace(tmp_path: Path) -> None:
    plain = describe(write_run(tmp_path / "plain", 7497, 3300))
    assert plain == (
        "infogan 64 px, 7497 steps, 55 min (2.27 steps/s), rotation in D x1 (SS-GAN), dropout 0.1"
    )
    light = describe(
        write_run(
            tmp_path / "light", 2458, 3312, rotation_augment=True, generator_filters=[128, 64, 32]
        )
    )
    assert "rotation of augmented views in D x1 (SS-GAN)" in light
    assert "G filters 128,64,32" in light and "(0.74 steps/s)" in light
    assert describe("random") == "none (random weights: the control)"


def test_the_control_is_built_at_the_size_asked_for() -> None:
    """A 96 px run compared with a 64 px control would credit training with the size."""
    assert random_size("random") == 64
    assert random_size("random:96") == 96
    assert random_size("var/runs/rot96") is None
    assert describe("random:96") == "none (random weights: the control), 96 px"
    with pytest.raises(ValueError, match="multiple of 8"):
        random_size("random:90")
    with pytest.raises(ValueError, match="multiple of 8"):
        random_size("random:0")  # not a run directory named "random:0" either


def test_pixel_caches_are_per_size_and_framing(tmp_path: Path, monkeypatch) -> None:
    """One cache file for every size fed 64 px photos to a 96 px model."""
    import numpy as np

    from embedder.heads import fit

    calls: list[tuple[int, bool]] = []

    def fake_load(files, size, object_crop):  # type: ignore[no-untyped-def]
        calls.append((size, object_crop))
        return np.zeros((len(files), size, size, 3), np.uint8)

    monkeypatch.setattr(fit, "load_pixels", fake_load)
    files = [tmp_path / "a.jpg"]
    cache = tmp_path / "pixels.npy"
    assert _pixels(files, 64, cache, False).shape[1] == 64
    assert _pixels(files, 96, cache, False).shape[1] == 96
    assert _pixels(files, 96, cache, True).shape[1] == 96
    assert _pixels(files, 64, cache, False).shape[1] == 64  # from its own cache file
    assert calls == [(64, False), (96, False), (96, True)]
    assert sorted(p.name for p in tmp_path.glob("*.npy")) == [
        "pixels-64px.npy", "pixels-96px-object.npy", "pixels-96px.npy"
    ]  # fmt: skip
