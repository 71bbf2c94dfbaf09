"""Helpers shared by the workbench's unit tests."""

from __future__ import annotations

from pathlib import Path


def train_args(catalog: Path, out: Path, **options: object) -> list[str]:
    """``python -m embedder train`` arguments for a tiny run at 16 px. Each option is a flag:
    ``max_steps=2`` stands for ``--max-steps 2``, ``no_progress=True`` for ``--no-progress``."""
    args = ["train", "--catalog", str(catalog), "--out", str(out), "--image-size", "16"]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return args
