"""The model repository's version folders (``MODEL_BASE/<name>/<version>/``), without TensorFlow.

Light on purpose: ``scripts/demo.py`` reads versions before any TensorFlow is imported.
"""

from __future__ import annotations

from pathlib import Path


def latest_version(model_dir: Path) -> int | None:
    """The highest numeric version folder under ``model_dir`` (None when there is none)."""
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions) if versions else None


def next_version(model_dir: Path) -> int:
    """The version an export writes next: one above the highest existing."""
    return (latest_version(model_dir) or 0) + 1
