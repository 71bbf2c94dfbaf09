"""The FAISS part of an index: optional PCA/OPQ transform + base index, keyed by int64 labels.

Knows nothing about external ids, metadata or durability; ``Collection`` owns those.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vector_search.index.spec import IndexSpec

log = logging.getLogger(__name__)

DEFAULT_NPROBE = 32
DEFAULT_EF_SEARCH = 128
DEFAULT_HNSW_M = 32
DEFAULT_EF_CONSTRUCTION = 128


def faiss_metric(metric: str) -> int:
    return faiss.METRIC_INNER_PRODUCT if metric == "IP" else faiss.METRIC_L2


def default_train_threshold(spec: IndexSpec) -> int:
    """Vectors to wait for before training automatically (explicit param wins)."""
    return spec.int_param("train_threshold", 1000 if spec.kind != "IVF-PQ" else 10_000)


def _pq_m(dim: int, requested: int) -> int:
    """Largest divisor of ``dim`` not above ``requested`` (PQ needs m | dim)."""
    for m in range(min(requested, dim), 0, -1):
        if dim % m == 0:
            return m
    return 1


class Engine:
    """Trainable FAISS index with deletes (remove_ids, or tombstones for HNSW)."""

    def __init__(self, spec: IndexSpec, use_gpu: bool = False) -> None:
        self.spec = spec
        self.metric = faiss_metric(spec.metric)
        self.transform: Any = None
        self.base: Any = None
        self.tombstones: set[int] = set()
        self.use_gpu = use_gpu and hasattr(faiss, "StandardGpuResources")
        self._gpu: Any = None
        self._gpu_dirty = True
        if not spec.trained_kind:
            self.base = self._make_base(spec.dimension, 0)

    @property
    def trained(self) -> bool:
        return self.base is not None

    @property
    def dim_out(self) -> int:
        return self.spec.pca_dimension or self.spec.dimension

    def _make_base(self, dim: int, n_train: int) -> Any:
        spec = self.spec
        if spec.kind == "Flat":
            return faiss.IndexIDMap(faiss.IndexFlat(dim, self.metric))
        if spec.kind == "HNSW":
            hnsw = faiss.IndexHNSWFlat(dim, spec.int_param("M", DEFAULT_HNSW_M), self.metric)
            hnsw.hnsw.efConstruction = spec.int_param("ef_construction", DEFAULT_EF_CONSTRUCTION)
            hnsw.hnsw.efSearch = spec.int_param("ef_search", DEFAULT_EF_SEARCH)
            return faiss.IndexIDMap(hnsw)
        # IVF sizing: ~4*sqrt(n) lists, but never fewer than 39 training points per list.
        auto = int(min(4 * math.sqrt(max(n_train, 1)), max(n_train // 39, 1)))
        nlist = spec.int_param("nlist", max(auto, 1))
        if spec.kind == "IVF":
            desc = f"IVF{nlist},Flat"
        else:
            bits = spec.int_param("pq_bits", 8 if n_train >= 256 * 39 else 4)
            desc = f"IVF{nlist},PQ{self._pq_m(dim)}x{bits}"
        index = faiss.index_factory(dim, desc, self.metric)
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = spec.int_param("nprobe", DEFAULT_NPROBE)
        if spec.kind == "IVF-PQ":
            faiss.downcast_index(
                ivf
            ).pq.cp.niter = 10  # 25 by default; re-ranking on raw vectors makes up for it
        return index

    def _pq_m(self, dim: int) -> int:
        return _pq_m(dim, self.spec.int_param("pq_m", max(dim // 8, 1)))

    def train(self, x: np.ndarray) -> None:
        """Train transform and base on ``x`` (raw vectors); the index must be re-filled after."""
        spec = self.spec
        if spec.pca_dimension:
            if spec.params.get("transform") == "OPQ":
                self.transform = faiss.OPQMatrix(
                    spec.dimension, self._pq_m(spec.pca_dimension), spec.pca_dimension
                )
                self.transform.niter = 10  # 50 by default: minutes on 100k; refine makes up for it
            else:
                self.transform = faiss.PCAMatrix(spec.dimension, spec.pca_dimension)
            self.transform.train(x)
        base = self._make_base(self.dim_out, len(x))
        if not base.is_trained:
            base.train(self.apply(x))
        self.base = base
        self.tombstones.clear()
        self._gpu_dirty = True
        log.info("trained index", extra={"index": spec.name, "n_train": len(x)})

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.transform.apply(x) if self.transform is not None else x

    def add(self, x: np.ndarray, labels: np.ndarray) -> None:
        self.base.add_with_ids(self.apply(x), labels)
        self._gpu_dirty = True

    def remove(self, labels: list[int]) -> None:
        if not labels:
            return
        if self.spec.kind == "HNSW":
            self.tombstones.update(labels)
        else:
            self.base.remove_ids(faiss.IDSelectorBatch(np.asarray(labels, dtype="int64")))
        self._gpu_dirty = True

    def reset_with(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Rebuild the base from raw vectors (HNSW compaction); keeps the trained transform."""
        base = self._make_base(self.dim_out, len(x))
        if not base.is_trained:
            base.train(self.apply(x))
        self.base = base
        self.tombstones.clear()
        if len(x):
            self.add(x, labels)

    def search(
        self,
        xq: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        excluded: set[int] | None = None,
        nprobe: int = 0,
        ef_search: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search; ``allowed`` restricts labels, ``excluded`` (+ tombstones) removes them."""
        sel, keep = self.selector(allowed, self.tombstones | (excluded or set()))  # keep: alive
        kind = self.spec.kind
        if kind == "HNSW":
            params: Any = faiss.SearchParametersHNSW(sel=sel)
            params.efSearch = max(
                ef_search or self.spec.int_param("ef_search", DEFAULT_EF_SEARCH), k
            )
        elif kind in ("IVF", "IVF-PQ"):
            params = faiss.SearchParametersIVF(sel=sel)
            params.nprobe = nprobe or self.spec.int_param("nprobe", DEFAULT_NPROBE)
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        xt = self.apply(xq)
        gpu = self._gpu_index() if sel is None and not nprobe else None
        if gpu is not None:
            return gpu.search(xt, k)
        return self.base.search(xt, k, params=params)

    @staticmethod
    def selector(allowed: np.ndarray | None, blocked: set[int]) -> tuple[Any, list[Any]]:
        """The FAISS selector for labels in ``allowed`` (all when None) and not in ``blocked``
        (None: every label), and the objects it points into: FAISS selectors hold raw pointers,
        so callers keep those alive as long as the selector."""
        if allowed is not None:
            if blocked:
                allowed = np.setdiff1d(allowed, np.fromiter(blocked, dtype="int64"))
            return faiss.IDSelectorBatch(allowed), []
        if blocked:
            inner = faiss.IDSelectorBatch(np.fromiter(blocked, dtype="int64"))
            return faiss.IDSelectorNot(inner), [inner]
        return None, []

    def _gpu_index(self) -> Any:
        """A GPU replica for unfiltered searches, rebuilt lazily after writes."""
        if not self.use_gpu or self.spec.kind == "HNSW" or faiss.get_num_gpus() == 0:
            return None
        if self._gpu is None or self._gpu_dirty:
            self._res = getattr(self, "_res", None) or faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._res, 0, self.base)
            self._gpu_dirty = False
        return self._gpu

    def stored_vectors(self) -> np.ndarray:
        """HNSW without a transform: a view of the full vectors FAISS holds, by position.

        Valid until the next write (callers hold the read or write lock).
        """
        hnsw = faiss.downcast_index(self.base.index)
        flat = faiss.downcast_index(hnsw.storage)
        n, d = flat.ntotal, flat.d
        if n == 0:
            return np.zeros((0, d), dtype="float32")
        return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)

    def positions_of(self, labels: np.ndarray) -> np.ndarray:
        """Storage positions of ``labels`` in an ``IndexIDMap`` base (all must be present)."""
        id_map = faiss.vector_to_array(self.base.id_map)
        pos_of = np.full(max(int(id_map.max(initial=-1)), int(labels.max(initial=-1))) + 1, -1)
        pos_of[id_map] = np.arange(len(id_map))
        pos = pos_of[labels]
        if (pos < 0).any():
            raise ValueError(f"index {self.spec.name}: labels missing from the FAISS index")
        return pos

    def memory_bytes(self) -> int:
        """Estimated resident size of the FAISS structures (not the raw vector store)."""
        if self.base is None:
            return 0
        n, d = self.base.ntotal, self.dim_out
        kind = self.spec.kind
        if kind == "Flat":
            size = n * (4 * d + 8)
        elif kind == "HNSW":
            hnsw = faiss.downcast_index(self.base.index)
            graph = hnsw.hnsw.neighbors.size() * 4 + hnsw.hnsw.levels.size() * 4
            size = n * (4 * d + 8) + graph + hnsw.hnsw.offsets.size() * 8
        else:
            ivf = faiss.extract_index_ivf(self.base)
            size = n * (ivf.code_size + 8) + ivf.nlist * d * 4
            if kind == "IVF-PQ":
                size += 256 * d * 4
        if self.transform is not None:
            size += self.spec.dimension * d * 4
        return int(size)

    def save(self, directory: Path) -> None:
        """The FAISS parts ``load`` reads; Flat's base is left out: it holds nothing but the
        raw vectors, which the snapshot stores anyway (the base is refilled from them)."""
        if self.base is not None and self.spec.kind != "Flat":
            faiss.write_index(self.base, str(directory / "base.faiss"))
        if self.transform is not None:
            faiss.write_VectorTransform(self.transform, str(directory / "transform.faiss"))

    def load(self, directory: Path, tombstones: list[int]) -> None:
        path = directory / "base.faiss"
        if path.exists():
            self.base = faiss.read_index(str(path))
        tpath = directory / "transform.faiss"
        if tpath.exists():
            self.transform = faiss.read_VectorTransform(str(tpath))
        self.tombstones = set(tombstones)
        self._gpu_dirty = True
