"""How `explore` names a run: every setting that changes what D learns, and the pace."""

from __future__ import annotations

import json
from pathlib import Path

from embedder.evaluation.explore import describe


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
