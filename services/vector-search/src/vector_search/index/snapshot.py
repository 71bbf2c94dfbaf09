"""Atomic snapshots: everything goes into ``snap-<gen>.tmp/``, fsynced, then renamed."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vector_search.index.collection import Collection
from vector_search.index.wal import fsync_dir

log = logging.getLogger(__name__)


class SnapshotData:
    """What a snapshot holds, copied under the lock and written without it."""

    def __init__(self, coll: Collection) -> None:
        self.state, self.vectors, self.labels = coll.export()
        self.generation = coll.generation
        base = coll.engine.base
        self.base = faiss.serialize_index(base) if base is not None else None
        self.transform: Any = coll.engine.transform  # replaced, never mutated, on retrain


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_snapshot(directory: Path, snap: SnapshotData) -> Path:
    final = directory / f"snap-{snap.generation:020d}"
    if final.exists():
        return final
    tmp = directory / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _write(tmp / "state.json", json.dumps(snap.state).encode())
    for name, arr in (("vectors.npy", snap.vectors), ("labels.npy", snap.labels)):
        with (tmp / name).open("wb") as f:
            np.save(f, arr)
            f.flush()
            os.fsync(f.fileno())
    if snap.base is not None:
        _write(tmp / "base.faiss", snap.base.tobytes())
    if snap.transform is not None:
        faiss.write_VectorTransform(snap.transform, str(tmp / "transform.faiss"))
        with (tmp / "transform.faiss").open("rb+") as f:
            os.fsync(f.fileno())
    fsync_dir(tmp)
    tmp.rename(final)
    fsync_dir(directory)
    for old in directory.glob("snap-*"):
        if old.name != final.name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_latest(directory: Path, coll: Collection) -> bool:
    """Restore the newest committed snapshot into ``coll``; False when there is none."""
    for tmp in directory.glob("snap-*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
    snaps = sorted(p for p in directory.glob("snap-*") if p.is_dir())
    if not snaps:
        return False
    path = snaps[-1]
    state = json.loads((path / "state.json").read_text())
    coll.engine.load(path, state["tombstones"])  # first: HNSW rows point into its storage
    coll.restore(state, np.load(path / "vectors.npy"), np.load(path / "labels.npy"))
    log.info("loaded snapshot", extra={"index": coll.spec.name, "generation": coll.generation})
    return True
