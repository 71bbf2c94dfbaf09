"""Proto <-> domain conversions (kept out of the servicer so it stays a thin adapter)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from vector_search.errors import DimensionMismatch, InvalidArgument
from vector_search.index.managed import ManagedIndex
from vector_search.index.spec import Filter, Hit, IndexSpec, SearchOptions

_METRIC_TO_DOMAIN = {pb.METRIC_UNSPECIFIED: "L2", pb.METRIC_L2: "L2", pb.METRIC_INNER_PRODUCT: "IP"}
_METRIC_TO_PROTO = {"L2": pb.METRIC_L2, "IP": pb.METRIC_INNER_PRODUCT}


def spec_from_proto(msg: pb.IndexSpec) -> IndexSpec:
    if msg.metric not in _METRIC_TO_DOMAIN:
        raise InvalidArgument(f"unknown metric {msg.metric}")
    return IndexSpec(
        name=msg.name,
        dimension=msg.dimension,
        metric=_METRIC_TO_DOMAIN[msg.metric],
        kind=msg.kind or "Flat",
        pca_dimension=msg.pca_dimension,
        params=dict(msg.params),
    )


def info_to_proto(index: ManagedIndex) -> pb.IndexInfo:
    s = index.spec
    info = index.info()
    return pb.IndexInfo(
        spec=pb.IndexSpec(
            name=s.name,
            dimension=s.dimension,
            metric=_METRIC_TO_PROTO[s.metric],
            kind=s.kind,
            pca_dimension=s.pca_dimension,
            params=s.params,
        ),
        count=int(info["count"]),
        generation=int(info["generation"]),
        memory_bytes=int(info["memory_bytes"]),
        trained=bool(info["trained"]),
    )


def filters_from_proto(msgs: Sequence[pb.Filter]) -> tuple[Filter, ...]:
    out = []
    for f in msgs:
        if not f.key or not f.values:
            raise InvalidArgument("a filter needs a key and at least one value")
        out.append(Filter(f.key, tuple(f.values)))
    return tuple(out)


def options_from_request(req: pb.SearchRequest, max_k: int) -> SearchOptions:
    k = req.k or 10
    if k > max_k:
        raise InvalidArgument(f"k={k} is above the limit {max_k}")
    return SearchOptions(
        k=k,
        filters=filters_from_proto(req.filters),
        nprobe=req.params.nprobe,
        ef_search=req.params.ef_search,
    )


def vector_from_values(values: Sequence[float], dim: int) -> np.ndarray:
    if len(values) != dim:
        raise DimensionMismatch(f"vector has {len(values)} values, index dimension is {dim}")
    return np.asarray(values, dtype="float32")


def items_to_arrays(
    items: Sequence[pb.Item], dim: int
) -> tuple[list[str], np.ndarray, list[dict[str, str]]]:
    vectors = np.empty((len(items), dim), dtype="float32")
    for row, item in enumerate(items):
        vectors[row] = vector_from_values(item.vector, dim)
    return [i.id for i in items], vectors, [dict(i.metadata) for i in items]


def hits_to_proto(hits: Sequence[Hit], generation: int) -> pb.SearchResponse:
    return pb.SearchResponse(
        hits=[
            pb.Hit(id=h.id, distance=h.distance, score=h.score, metadata=h.metadata) for h in hits
        ],
        generation=generation,
    )
