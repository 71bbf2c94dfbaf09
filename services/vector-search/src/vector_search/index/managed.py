"""One durable index: WAL before apply, snapshots off the write path, replay on open."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vector_search.errors import IndexNotFound, InvalidArgument, ResourceExhausted
from vector_search.index.collection import Collection
from vector_search.index.mirror import NoMirror, SearchMirror
from vector_search.index.snapshot import SnapshotData, load_latest, write_snapshot
from vector_search.index.spec import Filter, Hit, IndexSpec, SearchOptions
from vector_search.index.wal import DELETE, UPSERT, WriteAheadLog, encode, fsync_dir

log = logging.getLogger(__name__)


def write_spec(directory: Path, spec: IndexSpec) -> None:
    """Persist the spec atomically; the index exists once this returns."""
    tmp = directory / "spec.json.tmp"
    with tmp.open("w") as f:
        json.dump(spec.to_json(), f)
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(directory / "spec.json")
    fsync_dir(directory)


@dataclass(frozen=True)
class IndexOptions:
    """How the service keeps every index: WAL fsync policy, size limit, GPU replicas."""

    fsync: str = "always"  # always, batch or never (see WriteAheadLog)
    max_vectors: int = 20_000_000
    use_gpu: bool = False
    # the search path outside Python an index reports to (the native front), if any
    mirrors: Callable[[IndexSpec], SearchMirror] | None = None


DEFAULT_OPTIONS = IndexOptions()


@dataclass(frozen=True)
class SnapshotPolicy:
    """When writes since the last snapshot make a new one worth its cost (a full rewrite).

    Due once there are ``min_writes`` writes and they touched ``min_fraction`` of the items
    or the oldest is ``max_age_s`` old. The default (any write) is what ``close`` uses.
    """

    min_writes: int = 1
    min_fraction: float = 0.0
    max_age_s: float = 0.0

    def due(self, writes: int, items: int, count: int, age_s: float) -> bool:
        if writes < self.min_writes:
            return False
        return items >= self.min_fraction * count or age_s >= self.max_age_s


ANY_WRITE = SnapshotPolicy()


class ManagedIndex:
    """Collection + lock + WAL. Public methods are thread-safe."""

    def __init__(
        self, directory: Path, spec: IndexSpec, options: IndexOptions = DEFAULT_OPTIONS
    ) -> None:
        self.directory = directory
        self.spec = spec
        self.mirror: SearchMirror = options.mirrors(spec) if options.mirrors else NoMirror()
        self.lock = self.mirror.lock
        self._snapshotting = threading.Lock()
        self.coll = Collection(spec, use_gpu=options.use_gpu)
        self.wal = WriteAheadLog(directory, options.fsync)
        self.max_vectors = options.max_vectors
        self.snapshot_generation = 0
        self._pending_items = 0  # items written since the last snapshot
        self._pending_since: float | None = None  # monotonic time of the first of them
        self.dropped = False

    def open(self) -> None:
        """Latest snapshot, then every later WAL record: exactly the acknowledged state."""
        load_latest(self.directory, self.coll)
        self.snapshot_generation = self.coll.generation
        replayed = 0
        for rec in self.wal.replay(self.spec.dimension):
            if rec.gen <= self.coll.generation:
                continue
            if rec.kind == UPSERT:
                assert rec.vectors is not None
                self.coll.apply_upsert(rec.gen, rec.ids, rec.vectors, rec.metas)
            else:
                self.coll.apply_delete(rec.gen, rec.ids)
            replayed += 1
            self._note_write(len(rec.ids))
        self.wal.open(self.coll.generation + 1)
        with self.lock.write():
            self.mirror.rebuild(self.coll.rows())
            self.coll.mirror = self.mirror
            self.mirror.refresh(self.coll)
        log.info(
            "opened index",
            extra={
                "index": self.spec.name,
                "count": self.coll.count,
                "generation": self.coll.generation,
                "replayed": replayed,
            },
        )

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, metas: Sequence[dict[str, str]]
    ) -> tuple[int, int]:
        if any(not i for i in ids):
            raise InvalidArgument("item ids must be non-empty")
        last = {ext: n for n, ext in enumerate(ids)}  # duplicates in one request: last wins
        if len(last) != len(ids):
            rows = sorted(last.values())
            ids, vectors, metas = [ids[r] for r in rows], vectors[rows], [metas[r] for r in rows]
        vectors = np.ascontiguousarray(vectors, dtype="float32")
        with self.lock.write():
            self._check_live()
            self.coll.check_vectors(vectors)
            if not np.isfinite(vectors).all():
                raise InvalidArgument("vectors must be finite")
            new = sum(1 for i in ids if i not in self.coll.ids)
            if self.coll.count + new > self.max_vectors:
                raise ResourceExhausted(f"index {self.spec.name} is full ({self.max_vectors})")
            gen = self.coll.generation + 1
            self.wal.append(gen, encode(UPSERT, list(ids), [dict(m) for m in metas], vectors))
            self.coll.apply_upsert(gen, ids, vectors, metas)
            self.mirror.refresh(self.coll)
            self._note_write(len(ids))
            return len(ids), gen

    def delete(self, ids: Sequence[str]) -> tuple[int, int]:
        with self.lock.write():
            self._check_live()
            present = [i for i in dict.fromkeys(ids) if i in self.coll.ids]
            if not present:
                return 0, self.coll.generation
            gen = self.coll.generation + 1
            self.wal.append(gen, encode(DELETE, present, [], None))
            self._note_write(len(present))
            deleted = self.coll.apply_delete(gen, present)
            self.mirror.refresh(self.coll)
            return deleted, gen

    def _note_write(self, items: int) -> None:
        """Caller holds the write lock (or is opening the index)."""
        self._pending_items += items
        if self._pending_since is None:
            self._pending_since = time.monotonic()

    def _check_live(self) -> None:
        if self.dropped:  # a writer that queued behind DropIndex
            raise IndexNotFound(f"index {self.spec.name} was dropped")

    def search(
        self, xq: np.ndarray, opts: SearchOptions, self_ids: Sequence[str | None]
    ) -> tuple[list[list[Hit]], int]:
        with self.lock.read():
            return self.coll.search(xq, opts, self_ids), self.coll.generation

    def vectors_of(self, ids: Sequence[str]) -> np.ndarray:
        with self.lock.read():
            return np.stack([self.coll.vector_of(i) for i in ids])

    def get(self, ids: Sequence[str]):  # type: ignore[no-untyped-def]
        with self.lock.read():
            return self.coll.get(ids)

    def list_items(self, offset: int, limit: int, filters: Sequence[Filter]):  # type: ignore[no-untyped-def]
        with self.lock.read():
            return self.coll.list_items(offset, limit, filters)

    def info(self) -> dict[str, int | bool]:
        with self.lock.read():
            return {
                "count": self.coll.count,
                "generation": self.coll.generation,
                "memory_bytes": self.coll.memory_bytes() + self.mirror.nbytes(),
                "trained": self.coll.engine.trained,
            }

    def train(self) -> None:
        """Explicit training (e.g. before a bulk load is complete); not logged: derived state."""
        with self.lock.write():
            self.coll.train()
            self.mirror.refresh(self.coll)

    def snapshot(self, policy: SnapshotPolicy = ANY_WRITE) -> bool:
        """Begin under the read lock, finish without it; then drop covered WAL segments.

        A long read: searches keep running past writers that queue behind it. One snapshot
        at a time per index (the periodic one may still run when ``close`` takes its own).
        """
        with self._snapshotting:
            with self.lock.read_long():
                if self.dropped or not self._snapshot_due(policy):
                    return False
                data = SnapshotData(self.coll, self.directory)
                segment = self.wal.rotate(self.coll.generation + 1)
                pending = self._pending_items, self._pending_since
                self._pending_items, self._pending_since = 0, None
            try:
                write_snapshot(self.directory, data)
            except BaseException:  # still pending (e.g. disk full): due again next time
                with self.lock.write():
                    self._pending_items += pending[0]
                    if pending[1] is not None:  # older than any write since
                        self._pending_since = pending[1]
                raise
            self.wal.drop_before(segment)
            self.snapshot_generation = data.generation
        log.info("snapshot written", extra={"index": self.spec.name, "generation": data.generation})
        return True

    def _snapshot_due(self, policy: SnapshotPolicy) -> bool:
        since = self._pending_since
        age = 0.0 if since is None else time.monotonic() - since
        writes = self.coll.generation - self.snapshot_generation
        return policy.due(writes, self._pending_items, self.coll.count, age)

    def sync(self) -> None:
        self.wal.sync()

    def close(self) -> None:
        self.wal.close()
