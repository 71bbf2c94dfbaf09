"""In-memory state of one index: raw vectors, id map, metadata, and the FAISS engine.

Not thread-safe by itself: ``ManagedIndex`` holds the reader/writer lock around it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from itertools import islice

import faiss
import numpy as np

from vector_search.errors import DimensionMismatch, ItemNotFound
from vector_search.index.engine import Engine, default_train_threshold
from vector_search.index.spec import Filter, Hit, IndexSpec, SearchOptions

log = logging.getLogger(__name__)

EXACT_CUTOFF = 4096  # filtered subsets this small are searched exactly: cheap and exact
MAX_TRAIN = 64_000  # k-means sample: more barely moves centroids, costs linear time
MAX_TRAIN_PQ = 20_000


def meta_bytes(meta: dict[str, str]) -> int:
    """Estimated resident size of one item's metadata dict."""
    return 64 + sum(len(k) + len(v) + 100 for k, v in meta.items())


class Collection:
    """Items keyed by external id; each write gives the item a fresh int64 FAISS label."""

    def __init__(self, spec: IndexSpec, use_gpu: bool = False) -> None:
        self.spec = spec
        self.engine = Engine(spec, use_gpu=use_gpu)
        self.generation = 0
        self.next_label = 0
        self._vecs = np.zeros((16, spec.dimension), dtype="float32")
        self._row_labels = np.zeros(16, dtype="int64")
        self._n = 0
        self._row_of: dict[int, int] = {}
        self.ids: dict[str, int] = {}  # external id -> label, in first-insertion order
        self._ext_of: dict[int, str] = {}
        self.meta: dict[str, dict[str, str]] = {}
        self._inverted: dict[str, dict[str, set[str]]] = {}
        self._meta_bytes = 0  # kept as items come and go: DescribeIndex must not walk them
        default_refine = 16 if spec.kind == "IVF-PQ" else (4 if spec.pca_dimension else 1)
        self.refine = spec.int_param("refine", default_refine)
        self.trained_on = 0

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
        self._remove_existing([i for i in ids if i in self.ids])
        labels = np.arange(self.next_label, self.next_label + len(ids), dtype="int64")
        self.next_label += len(ids)
        self._grow(self._n + len(ids))
        self._vecs[self._n : self._n + len(ids)] = vectors
        self._row_labels[self._n : self._n + len(ids)] = labels
        for offset, (ext, label, meta) in enumerate(zip(ids, labels.tolist(), metas, strict=True)):
            self._row_of[label] = self._n + offset
            self.ids[ext] = label
            self._ext_of[label] = ext
            self._add_meta(ext, dict(meta))
        self._n += len(ids)
        if self.engine.trained:
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
        x = self._vecs[: self._n]
        cap = self._train_cap()
        if self._n > cap:
            pick = np.random.default_rng(0).choice(self._n, cap, replace=False)
            x = x[np.sort(pick)]
        self.engine.train(np.ascontiguousarray(x))
        self.trained_on = len(x)
        self.engine.add(np.ascontiguousarray(self._vecs[: self._n]), self._row_labels[: self._n])

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
            self.engine.reset_with(
                np.ascontiguousarray(self._vecs[: self._n]), self._row_labels[: self._n].copy()
            )

    def _remove_existing(self, exts: Sequence[str], drop_ids: bool = False) -> None:
        labels = []
        for ext in exts:
            label = self.ids[ext] if not drop_ids else self.ids.pop(ext)
            labels.append(label)
            del self._ext_of[label]
            meta = self.meta.pop(ext)
            self._meta_bytes -= meta_bytes(meta)
            for key, value in meta.items():
                self._inverted[key][value].discard(ext)
            row = self._row_of.pop(label)
            last = self._n - 1
            if row != last:  # swap-remove keeps the raw store dense
                moved = int(self._row_labels[last])
                self._vecs[row] = self._vecs[last]
                self._row_labels[row] = moved
                self._row_of[moved] = row
            self._n -= 1
        if self.engine.trained:
            self.engine.remove(labels)

    def _grow(self, need: int) -> None:
        if need <= len(self._vecs):
            return
        cap = max(need, 2 * len(self._vecs))
        vecs = np.zeros((cap, self.spec.dimension), dtype="float32")
        vecs[: self._n] = self._vecs[: self._n]
        labels = np.zeros(cap, dtype="int64")
        labels[: self._n] = self._row_labels[: self._n]
        self._vecs, self._row_labels = vecs, labels

    def export(self) -> tuple[dict[str, object], np.ndarray, np.ndarray]:
        """A consistent copy for a snapshot (caller holds at least the read lock)."""
        state: dict[str, object] = {
            "generation": self.generation,
            "next_label": self.next_label,
            "items": [[ext, label, self.meta[ext]] for ext, label in self.ids.items()],
            "tombstones": sorted(self.engine.tombstones),
            "trained_on": self.trained_on,
        }
        return state, self._vecs[: self._n].copy(), self._row_labels[: self._n].copy()

    def restore(self, state: dict, vectors: np.ndarray, labels: np.ndarray) -> None:  # type: ignore[type-arg]
        """Inverse of ``export``; the engine is loaded separately."""
        self.generation = int(state["generation"])
        self.next_label = int(state["next_label"])
        self.trained_on = int(state.get("trained_on", 0))
        self._n = 0
        self._grow(len(vectors))
        self._n = len(vectors)
        self._vecs[: self._n] = vectors
        self._row_labels[: self._n] = labels
        self._row_of = {int(label): row for row, label in enumerate(labels.tolist())}
        for ext, label, meta in state["items"]:
            self.ids[ext] = label
            self._ext_of[label] = ext
            self._add_meta(ext, meta)

    def _add_meta(self, ext: str, meta: dict[str, str]) -> None:
        self.meta[ext] = meta
        self._meta_bytes += meta_bytes(meta)
        for key, value in meta.items():
            self._inverted.setdefault(key, {}).setdefault(value, set()).add(ext)

    # ---- reads ----

    @property
    def count(self) -> int:
        return self._n

    def memory_bytes(self) -> int:
        """O(1): the metadata share is a running total, not a walk over every item."""
        per_item = self.spec.dimension * 4 + 8 + 150
        return self.engine.memory_bytes() + self._n * per_item + self._meta_bytes

    def vector_of(self, ext: str) -> np.ndarray:
        label = self.ids.get(ext)
        if label is None:
            raise ItemNotFound(f"no item {ext!r} in index {self.spec.name}")
        return self._vecs[self._row_of[label]].copy()

    def get(
        self, ids: Iterable[str]
    ) -> tuple[list[tuple[str, dict[str, str], np.ndarray]], list[str]]:
        found, missing = [], []
        for ext in ids:
            if ext in self.ids:
                found.append((ext, self.meta[ext], self.vector_of(ext)))
            else:
                missing.append(ext)
        return found, missing

    def list_items(
        self, offset: int, limit: int, filters: Sequence[Filter]
    ) -> tuple[list[tuple[str, dict[str, str]]], int]:
        match = self._match(filters)
        exts: Iterable[str] = self.ids if match is None else (e for e in self.ids if e in match)
        total = len(self.ids) if match is None else len(match)
        page = list(islice(exts, offset, offset + limit))
        return [(e, self.meta[e]) for e in page], total

    def _match(self, filters: Sequence[Filter]) -> set[str] | None:
        if not filters:
            return None
        sets = []
        for f in filters:
            by_value = self._inverted.get(f.key, {})
            sets.append(set().union(*(by_value.get(v, set()) for v in f.values)))
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])

    def search(
        self, xq: np.ndarray, opts: SearchOptions, self_ids: Sequence[str | None]
    ) -> list[list[Hit]]:
        """k nearest per query row; ``self_ids[i]`` (more-like-this) is excluded from row i."""
        self.check_vectors(xq)
        match = self._match(opts.filters)
        n_extra = 1 if any(self_ids) else 0
        k = opts.k + n_extra
        if match is not None:
            allowed = np.fromiter((self.ids[e] for e in match), dtype="int64", count=len(match))
        else:
            allowed = None
        n_cand = self._n if allowed is None else len(allowed)
        if n_cand == 0:
            return [[] for _ in range(len(xq))]
        if not self.engine.trained or (allowed is not None and n_cand <= EXACT_CUTOFF):
            dist, lab = self._exact(xq, min(k, n_cand), allowed)
        else:
            dist, lab = self._approx(xq, k, allowed, opts, n_cand)
        return [
            self._hits(d, lab_row, s, opts.k)
            for d, lab_row, s in zip(dist, lab, self_ids, strict=True)
        ]

    def _approx(
        self, xq: np.ndarray, k: int, allowed: np.ndarray | None, opts: SearchOptions, n_cand: int
    ) -> tuple[np.ndarray, np.ndarray]:
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
                d3, l3 = self._exact(xq[short], want, allowed)
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
            vecs = self._vecs[[self._row_of[int(c)] for c in cand]]
            d, idx = faiss.knn(xq[i : i + 1], vecs, min(k, len(cand)), metric=self.engine.metric)
            out_d[i, : d.shape[1]] = d[0]
            out_l[i, : d.shape[1]] = cand[idx[0]]
        return out_d, out_l

    def _exact(
        self, xq: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            vecs, labels = self._vecs[: self._n], self._row_labels[: self._n]
        else:
            rows = np.fromiter((self._row_of[int(a)] for a in allowed), dtype="int64")
            vecs, labels = self._vecs[rows], allowed
        k = min(k, len(labels))
        dist, idx = faiss.knn(
            np.ascontiguousarray(xq), np.ascontiguousarray(vecs), k, metric=self.engine.metric
        )
        return dist, np.where(idx >= 0, labels[np.maximum(idx, 0)], -1)

    def _hits(self, dist: np.ndarray, labels: np.ndarray, self_id: str | None, k: int) -> list[Hit]:
        hits = []
        for d, label in zip(dist.tolist(), labels.tolist(), strict=True):
            ext = self._ext_of.get(label) if label >= 0 else None
            if ext is None or ext == self_id:
                continue
            hits.append(Hit(ext, float(d), self._score(float(d)), self.meta[ext]))
            if len(hits) == k:
                break
        return hits

    def _score(self, d: float) -> float:
        s = (d + 1.0) / 2.0 if self.spec.metric == "IP" else 1.0 - d / 4.0
        return min(1.0, max(0.0, s))
