"""In-memory state of one index: raw vectors, id map, metadata, and the FAISS engine.

Not thread-safe by itself: ``ManagedIndex`` holds the reader/writer lock around it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import faiss
import numpy as np

from vector_search.errors import DimensionMismatch, ItemNotFound
from vector_search.index.engine import Engine, default_train_threshold
from vector_search.index.gil import chunks, copy_list
from vector_search.index.labels import Labels
from vector_search.index.metadata import MetadataColumns
from vector_search.index.mirror import NoMirror, SearchMirror
from vector_search.index.spec import Filter, Hit, IndexSpec, SearchOptions

log = logging.getLogger(__name__)

EXACT_CUTOFF = 4096  # filtered subsets this small are searched exactly: cheap and exact
MAX_TRAIN = 64_000  # k-means sample: more barely moves centroids, costs linear time
MAX_TRAIN_PQ = 20_000
SNAPSHOT_FORMAT = 3


ID_OVERHEAD = 8 + 8 + 4 + 64  # row label, row -> id slot, label -> row, ids dict entry


@dataclass
class Export:
    """A collection's state for a snapshot (see ``Collection.export``)."""

    generation: int
    next_label: int
    trained_on: int
    ids: list[str]  # browsing order
    rows: list[int]  # the row of each of ``ids``
    labels: np.ndarray  # FAISS label per row
    keys: list[str]  # metadata key names
    values: list[list[str | None]]  # per key: value id -> value (None: a free slot)
    meta: np.ndarray  # rows x keys value ids
    tombstones: list[int]
    vectors: np.ndarray | None  # per row; a view, valid under the lock only


def id_bytes(ext: str) -> int:
    """Estimated resident size of one item's id and its row bookkeeping."""
    return sys.getsizeof(ext) + ID_OVERHEAD


class Collection:
    """Items keyed by external id, stored in dense rows (swap-remove on delete).

    Each write gives the item an int64 FAISS label; labels are reused once FAISS no longer
    holds them (at once for Flat/IVF, after compaction for HNSW tombstones). HNSW without a
    transform keeps the full vectors in its own storage, so rows point there instead of
    holding a second copy.
    """

    def __init__(self, spec: IndexSpec, use_gpu: bool = False) -> None:
        self.spec = spec
        self.engine = Engine(spec, use_gpu=use_gpu)
        self.generation = 0
        self.shared = spec.kind == "HNSW" and not spec.pca_dimension
        self._vecs: np.ndarray | None = None
        self._row_pos: np.ndarray | None = None  # row -> position in the engine's storage
        if self.shared:
            self._row_pos = np.zeros(16, dtype="int64")
        else:
            self._vecs = np.zeros((16, spec.dimension), dtype="float32")
        self._row_labels = np.zeros(16, dtype="int64")
        self._row_ext: list[str] = []
        self._n = 0
        self.ids: dict[str, int] = {}  # external id -> row, in first-insertion order
        self._labels = Labels()
        self._columns = MetadataColumns()
        self._id_bytes = 0  # kept as items come and go: DescribeIndex must not walk them
        default_refine = 16 if spec.kind == "IVF-PQ" else (4 if spec.pca_dimension else 1)
        self.refine = spec.int_param("refine", default_refine)
        self.trained_on = 0
        # told of every label given and taken (ManagedIndex attaches it once loaded)
        self.mirror: SearchMirror = NoMirror()

    # ---- writes (callers hold the write lock and have logged the write) ----

    def check_vectors(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.spec.dimension:
            got = vectors.shape[-1] if vectors.ndim == 2 else vectors.shape
            raise DimensionMismatch(
                f"index {self.spec.name} has dimension {self.spec.dimension}, got {got}"
            )

    def apply_upsert(
        self, gen: int, ids: Sequence[str], vectors: np.ndarray, metas: Sequence[dict[str, str]]
    ) -> None:
        self._remove_existing([i for i in dict.fromkeys(ids) if i in self.ids])
        n, k = self._n, len(ids)
        labels = self._labels.new(np.arange(n, n + k))
        self._grow(n + k)
        if self._vecs is not None:
            self._vecs[n : n + k] = vectors
        self._row_labels[n : n + k] = labels
        self.mirror.added(labels, ids, metas)
        for row, (ext, meta) in enumerate(zip(ids, metas, strict=True), start=n):
            if ext not in self.ids:
                self._id_bytes += id_bytes(ext)
            self.ids[ext] = row  # an existing key keeps its place in browsing order
            self._row_ext.append(ext)
            self._columns.set_row(row, meta)
        self._n += k
        if self.engine.trained:
            if self._row_pos is not None:
                ntotal = self.engine.base.ntotal
                self._row_pos[n : n + k] = np.arange(ntotal, ntotal + k)
            self.engine.add(np.ascontiguousarray(vectors, dtype="float32"), labels)
        self._maybe_train()
        self.generation = gen

    def apply_delete(self, gen: int, ids: Sequence[str]) -> int:
        present = [i for i in dict.fromkeys(ids) if i in self.ids]
        self._remove_existing(present, drop_ids=True)
        self._maybe_compact()
        self.generation = gen
        return len(present)

    def train(self) -> None:
        """Train now on what is stored (explicit training; also used automatically)."""
        if self._n == 0:
            return
        x_all = np.ascontiguousarray(self._stored(None))
        x = x_all
        cap = self._train_cap()
        if self._n > cap:
            pick = np.random.default_rng(0).choice(self._n, cap, replace=False)
            x = x_all[np.sort(pick)]
        self.engine.train(np.ascontiguousarray(x))
        self.trained_on = len(x)
        self.engine.add(x_all, self._row_labels[: self._n])
        self._engine_rebuilt()

    def _train_cap(self) -> int:
        return MAX_TRAIN_PQ if self.spec.kind == "IVF-PQ" else MAX_TRAIN

    def _maybe_train(self) -> None:
        """Train at the threshold; retrain when the index has grown 8x past its training set."""
        if not self.engine.trained:
            if self._n >= default_train_threshold(self.spec):
                self.train()
        elif (
            self.spec.trained_kind
            and self._n >= 8 * self.trained_on
            and self.trained_on < self._train_cap()
        ):
            log.info("retraining", extra={"index": self.spec.name, "count": self._n})
            self.train()

    def _maybe_compact(self) -> None:
        tomb = len(self.engine.tombstones)
        if tomb > max(1000, self._n // 4):
            log.info("compacting tombstones", extra={"index": self.spec.name, "tombstones": tomb})
            x = np.ascontiguousarray(self._stored(None))
            self.engine.reset_with(x, self._row_labels[: self._n].copy())
            self._engine_rebuilt()

    def _engine_rebuilt(self) -> None:
        """The engine now holds exactly the live rows, in row order, and no tombstones."""
        if self._row_pos is not None:
            self._row_pos[: self._n] = np.arange(self._n)
        self._labels.reclaim(self.engine.tombstones)

    @property
    def next_label(self) -> int:
        return self._labels.next

    def _remove_existing(self, exts: Sequence[str], drop_ids: bool = False) -> None:
        labels = []
        for ext in exts:
            row = self.ids.pop(ext) if drop_ids else self.ids[ext]
            if drop_ids:
                self._id_bytes -= id_bytes(ext)
            label = int(self._row_labels[row])
            labels.append(label)
            self._labels.row[label] = -1
            self._columns.clear_row(row)
            last = self._n - 1
            if row != last:  # swap-remove keeps the rows dense
                moved_ext, moved = self._row_ext[last], int(self._row_labels[last])
                self._row_ext[row] = moved_ext
                self.ids[moved_ext] = row
                self._row_labels[row] = moved
                self._labels.row[moved] = row
                self._columns.move(last, row)
                if self._vecs is not None:
                    self._vecs[row] = self._vecs[last]
                if self._row_pos is not None:
                    self._row_pos[row] = self._row_pos[last]
            self._row_ext.pop()
            self._n -= 1
        self.mirror.removed(labels)
        if self.engine.trained:
            self.engine.remove(labels)
        if not (self.engine.trained and self.spec.kind == "HNSW"):  # else tombstones, for now
            self._labels.release(labels)

    def _grow(self, need: int) -> None:
        if need <= len(self._row_labels):
            return
        cap = max(need, 2 * len(self._row_labels))
        labels = np.zeros(cap, dtype="int64")
        labels[: self._n] = self._row_labels[: self._n]
        self._row_labels = labels
        if self._vecs is not None:
            vecs = np.zeros((cap, self.spec.dimension), dtype="float32")
            vecs[: self._n] = self._vecs[: self._n]
            self._vecs = vecs
        if self._row_pos is not None:
            pos = np.zeros(cap, dtype="int64")
            pos[: self._n] = self._row_pos[: self._n]
            self._row_pos = pos
        self._columns.grow(cap)

    def export(self) -> Export:
        """What a snapshot needs, taken under at least the read lock.

        Small parts are copied, Python lists in GIL-yielding chunks (ids, rows, value
        tables), so searches run meanwhile and the lock is not held while they are encoded.
        ``vectors`` is a view, valid only while the lock is held (None for shared HNSW: the
        FAISS index holds them).
        """
        names, values, meta = self._columns.export(self._n)
        return Export(
            generation=self.generation,
            next_label=self.next_label,
            trained_on=self.trained_on,
            ids=copy_list(self.ids),
            rows=copy_list(self.ids.values()),
            labels=self._row_labels[: self._n].copy(),
            keys=names,
            values=values,
            meta=meta,
            tombstones=copy_list(self.engine.tombstones),
            vectors=None if self.shared else self._vecs[: self._n],  # type: ignore[index]
        )

    def restore(self, state: dict, vectors: np.ndarray | None, labels: np.ndarray) -> None:  # type: ignore[type-arg]
        """Inverse of ``export`` (snapshot formats 1 to 3), into a fresh collection.

        Load the engine first: with shared HNSW storage the rows are pointed at it; an
        empty engine (a Flat snapshot does not store its FAISS index) is filled from
        ``vectors``, which may be None only when the engine holds them.
        """
        fmt = int(state.get("format", 1))
        if fmt > SNAPSHOT_FORMAT:
            raise ValueError(f"snapshot format {fmt} is newer than this code ({SNAPSHOT_FORMAT})")
        self.generation = int(state["generation"])
        self.trained_on = int(state.get("trained_on", 0))
        n = len(labels)
        self._grow(n)  # into an empty collection: nothing to copy over
        self._n = n
        labels = np.asarray(labels, dtype="int64")
        self._row_labels[:n] = labels
        self._labels.restore(int(state["next_label"]), labels, self.engine.tombstones)
        self._row_ext = [""] * n
        if fmt == 1:
            for ext, label, meta in state["items"]:
                row = self._labels.row_of(label)
                self.ids[ext] = row
                self._row_ext[row] = ext
                self._columns.set_row(row, meta)
        else:
            for ext, row in zip(state["ids"], state["rows"], strict=True):
                self.ids[ext] = row
                self._row_ext[row] = ext
            self._columns = MetadataColumns.restored(state["metadata"], n)
        self._id_bytes = sum(map(id_bytes, self.ids))
        if self._vecs is not None:
            assert vectors is not None
            self._vecs[:n] = vectors
            if n and self.engine.trained and self.engine.base.ntotal == 0:
                self.engine.add(np.ascontiguousarray(vectors, dtype="float32"), labels)
        else:
            self._point_rows_at_engine(vectors, labels)
        self._labels.reclaim(self.engine.tombstones)

    def _point_rows_at_engine(self, vectors: np.ndarray | None, labels: np.ndarray) -> None:
        assert self._row_pos is not None
        n = len(labels)
        if self.engine.base.ntotal == 0:  # no engine loaded: fill it from the raw vectors
            self.engine.tombstones.clear()
            if n:
                if vectors is None:
                    raise ValueError(f"index {self.spec.name}: snapshot lacks its vectors")
                self.engine.add(np.ascontiguousarray(vectors, dtype="float32"), labels)
            self._row_pos[:n] = np.arange(n)
        else:
            self._row_pos[:n] = self.engine.positions_of(labels)

    # ---- reads ----

    @property
    def count(self) -> int:
        return self._n

    def memory_bytes(self) -> int:
        """O(1) in items: running totals and array sizes, never a walk over every item."""
        per_row = 0 if self._vecs is None else self.spec.dimension * 4
        return (
            self.engine.memory_bytes()
            + self._n * per_row
            + self._id_bytes
            + self._columns.nbytes()
            + self._labels.nbytes()
            - 4 * self._n  # already in ID_OVERHEAD
        )

    def rows(self) -> Iterator[tuple[int, str, dict[str, str]]]:
        """Every live row's (label, id, metadata), handing the GIL over between chunks."""
        labels = self._row_labels[: self._n].tolist()
        for part in chunks(range(self._n)):
            for row in part:
                yield labels[row], self._row_ext[row], self._columns.get(row)

    def _stored(self, rows: np.ndarray | None) -> np.ndarray:
        """Raw vectors of ``rows`` (every row when None); a view of the own store, or a copy."""
        if self._vecs is not None:
            return self._vecs[: self._n] if rows is None else self._vecs[rows]
        assert self._row_pos is not None
        pos = self._row_pos[: self._n] if rows is None else self._row_pos[rows]
        return self.engine.stored_vectors()[pos]

    def vector_of(self, ext: str) -> np.ndarray:
        row = self.ids.get(ext)
        if row is None:
            raise ItemNotFound(f"no item {ext!r} in index {self.spec.name}")
        return np.array(self._stored(np.array([row]))[0], copy=True)

    def get(
        self, ids: Iterable[str]
    ) -> tuple[list[tuple[str, dict[str, str], np.ndarray]], list[str]]:
        found, missing = [], []
        for ext in ids:
            row = self.ids.get(ext)
            if row is not None:
                found.append((ext, self._columns.get(row), self.vector_of(ext)))
            else:
                missing.append(ext)
        return found, missing

    def list_items(
        self, offset: int, limit: int, filters: Sequence[Filter]
    ) -> tuple[list[tuple[str, dict[str, str]]], int]:
        rows = self._match(filters)
        if rows is None:
            page = list(islice(self.ids.items(), offset, offset + limit))
            total = len(self.ids)
        else:
            keep = np.zeros(self._n, dtype=bool)
            keep[rows] = True
            flags = keep.tolist()
            matching = ((e, r) for e, r in self.ids.items() if flags[r])
            page, total = list(islice(matching, offset, offset + limit)), len(rows)
        return [(e, self._columns.get(r)) for e, r in page], total

    def _match(self, filters: Sequence[Filter]) -> np.ndarray | None:
        """Rows matching every filter (ascending), or None when there is no filter."""
        if not filters:
            return None
        return self._columns.match(filters, self._n)

    def search(
        self, xq: np.ndarray, opts: SearchOptions, self_ids: Sequence[str | None]
    ) -> list[list[Hit]]:
        """k nearest per query row; ``self_ids[i]`` (more-like-this) is excluded from row i."""
        self.check_vectors(xq)
        rows = self._match(opts.filters)
        n_extra = 1 if any(self_ids) else 0
        k = opts.k + n_extra
        n_cand = self._n if rows is None else len(rows)
        if n_cand == 0:
            return [[] for _ in range(len(xq))]
        if not self.engine.trained or (rows is not None and n_cand <= EXACT_CUTOFF):
            dist, lab = self._exact(xq, min(k, n_cand), rows)
        else:
            dist, lab = self._approx(xq, k, rows, opts, n_cand)
        return [
            self._hits(d, lab_row, s, opts.k)
            for d, lab_row, s in zip(dist, lab, self_ids, strict=True)
        ]

    def _approx(
        self, xq: np.ndarray, k: int, rows: np.ndarray | None, opts: SearchOptions, n_cand: int
    ) -> tuple[np.ndarray, np.ndarray]:
        allowed = None if rows is None else self._row_labels[rows]
        kk = min(k * self.refine, n_cand) if self.refine > 1 else k
        dist, lab = self.engine.search(xq, kk, allowed, None, opts.nprobe, opts.ef_search)
        want = min(k, n_cand)
        short = (lab >= 0).sum(axis=1) < want
        if short.any():  # widen the search once, then fall back to exact on the subset
            nprobe = 4 * (opts.nprobe or self.spec.int_param("nprobe", 32))
            ef = 4 * max(opts.ef_search or self.spec.int_param("ef_search", 64), kk)
            d2, l2 = self.engine.search(xq[short], kk, allowed, None, nprobe, ef)
            dist[short], lab[short] = d2, l2
            short = (lab >= 0).sum(axis=1) < want
            if short.any():
                d3, l3 = self._exact(xq[short], want, rows)
                dist[short] = np.pad(d3, ((0, 0), (0, kk - want)), constant_values=np.nan)
                lab[short] = np.pad(l3, ((0, 0), (0, kk - want)), constant_values=-1)
        if self.refine > 1:
            return self._rerank(xq, lab, k)
        return dist, lab

    def _rerank(self, xq: np.ndarray, lab: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        out_d = np.full((len(xq), k), np.nan, dtype="float32")
        out_l = np.full((len(xq), k), -1, dtype="int64")
        for i, row in enumerate(lab):
            cand = row[row >= 0]
            if not len(cand):
                continue
            vecs = self._stored(self._labels.row[cand])
            d, idx = faiss.knn(xq[i : i + 1], vecs, min(k, len(cand)), metric=self.engine.metric)
            out_d[i, : d.shape[1]] = d[0]
            out_l[i, : d.shape[1]] = cand[idx[0]]
        return out_d, out_l

    def _exact(
        self, xq: np.ndarray, k: int, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        labels = self._row_labels[: self._n] if rows is None else self._row_labels[rows]
        vecs = self._stored(rows)
        k = min(k, len(labels))
        dist, idx = faiss.knn(
            np.ascontiguousarray(xq), np.ascontiguousarray(vecs), k, metric=self.engine.metric
        )
        return dist, np.where(idx >= 0, labels[np.maximum(idx, 0)], -1)

    def _hits(self, dist: np.ndarray, labels: np.ndarray, self_id: str | None, k: int) -> list[Hit]:
        hits = []
        for d, label in zip(dist.tolist(), labels.tolist(), strict=True):
            row = self._labels.row_of(label)
            if row < 0:
                continue
            ext = self._row_ext[row]
            if ext == self_id:
                continue
            hits.append(Hit(ext, float(d), self._score(float(d)), self._columns.get(row)))
            if len(hits) == k:
                break
        return hits

    def _score(self, d: float) -> float:
        s = (d + 1.0) / 2.0 if self.spec.metric == "IP" else 1.0 - d / 4.0
        return min(1.0, max(0.0, s))
