"""`make demo`'s model step on a real run: a background run stopped (Ctrl-C) before it wrote
run.json is exported from its newest checkpoint as a new version, and then reused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TRAIN_STEPS

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_a_stopped_background_run_is_exported_from_its_newest_checkpoint(
    demo, system, tmp_path: Path
) -> None:
    args = demo.parse_args(
        ["--catalog", str(system.source), "--var", str(tmp_path / "var"), "--sample", "0",
         "--train-steps", str(TRAIN_STEPS), "--background-epochs", "0", "--baselines", "none"]
    )  # fmt: skip
    run, models = demo.run_dir(args), args.var / "models"
    shutil.copytree(demo.run_dir(system.args), run)
    shutil.copytree(system.args.var / "models" / "infogan", models / "infogan")
    finished = (run / "run.json").read_text()
    # The background trainer gets one step further; Ctrl-C stops it before its run.json.
    subprocess.run(
        [sys.executable, "-m", "embedder", "train", "--catalog", str(system.source),
         "--out", str(run), "--max-steps", str(TRAIN_STEPS + 1), "--image-size", "64",
         "--no-progress"],
        check=True, timeout=600,
    )  # fmt: skip
    (run / "run.json").write_text(finished)
    assert demo.newest_checkpoint(run)[0] == TRAIN_STEPS + 1
    before = snapshot(run)

    demo.train_or_reuse(args, system.source, models)
    assert snapshot(run) == before, "the export wrote into the run"
    meta = json.loads((models / "infogan" / "2" / "assets.extra" / "embedder.json").read_text())
    assert meta["steps"] == TRAIN_STEPS + 1
    assert meta["checkpoint"].endswith(f"/checkpoints/ckpt-{TRAIN_STEPS + 1}")
    assert (models / "infogan" / "exported_step.txt").read_text() == str(TRAIN_STEPS + 1)

    demo.train_or_reuse(args, system.source, models)
    assert demo.latest_version(models / "infogan") == 2, "reused, not exported again"
