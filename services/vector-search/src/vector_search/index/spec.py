"""Index specification and search value types (pure data, no FAISS, no gRPC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fashionrec_common.index_names import valid_index_name
from vector_search.errors import InvalidArgument

KINDS = ("Flat", "IVF", "HNSW", "IVF-PQ")
METRICS = ("L2", "IP")
# Build parameters each kind accepts; values are ints given as strings in the proto.
_PARAMS = {
    "Flat": set(),
    "IVF": {"nlist", "nprobe"},
    "HNSW": {"M", "ef_construction", "ef_search"},
    "IVF-PQ": {"nlist", "nprobe", "pq_m", "pq_bits", "refine"},
}
_COMMON = {"train_threshold", "transform", "refine"}


@dataclass(frozen=True)
class IndexSpec:
    """What CreateIndex asked for; persisted as JSON and compared on ``exist_ok``."""

    name: str
    dimension: int
    metric: str = "L2"
    kind: str = "Flat"
    pca_dimension: int = 0
    params: dict[str, str] = field(default_factory=dict)

    def validate(self) -> IndexSpec:
        if not valid_index_name(self.name):
            raise InvalidArgument(f"bad index name {self.name!r}: use <catalogue>/<model>")
        if not 1 <= self.dimension <= 65_536:
            raise InvalidArgument("dimension must be in 1..65536")
        if self.metric not in METRICS:
            raise InvalidArgument(f"metric must be one of {METRICS}")
        if self.kind not in KINDS:
            raise InvalidArgument(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.pca_dimension and not 1 <= self.pca_dimension < self.dimension:
            raise InvalidArgument("pca_dimension must be below dimension")
        unknown = set(self.params) - _PARAMS[self.kind] - _COMMON
        if unknown:
            raise InvalidArgument(f"unknown params for {self.kind}: {sorted(unknown)}")
        for key, value in self.params.items():
            if key == "transform":
                if value not in ("PCA", "OPQ"):
                    raise InvalidArgument("transform must be PCA or OPQ")
            elif not value.isdigit() or int(value) <= 0:
                raise InvalidArgument(f"param {key} must be a positive integer")
        if self.params.get("transform") == "OPQ":
            if self.kind != "IVF-PQ" or not self.pca_dimension:
                raise InvalidArgument("OPQ needs kind IVF-PQ and a pca_dimension")
        return self

    @property
    def trained_kind(self) -> bool:
        """Kinds that must see data before they can index it."""
        return self.kind in ("IVF", "IVF-PQ") or self.pca_dimension > 0

    def int_param(self, key: str, default: int) -> int:
        return int(self.params.get(key, default))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dimension": self.dimension,
            "metric": self.metric,
            "kind": self.kind,
            "pca_dimension": self.pca_dimension,
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexSpec:
        return cls(**data)


@dataclass(frozen=True)
class Filter:
    """Metadata filter: ``key`` must equal one of ``values``."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class SearchOptions:
    """Per-request knobs; 0 means the index default."""

    k: int
    filters: tuple[Filter, ...] = ()
    nprobe: int = 0
    ef_search: int = 0


@dataclass(frozen=True)
class Hit:
    id: str
    distance: float
    score: float
    metadata: dict[str, str]
