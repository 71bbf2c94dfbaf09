"""Servicer adapter: deadlines are honoured and domain errors map to one status code each."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from fashionrec_common.metrics import latency_histogram
from vector_search import errors
from vector_search.config import VectorSearchSettings
from vector_search.index.registry import IndexRegistry
from vector_search.transport.servicer import VectorSearchServicer, status_for


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining
        self.code: grpc.StatusCode | None = None

    def time_remaining(self) -> float | None:
        return self.remaining

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        raise Aborted(details)


@pytest.fixture
def servicer(tmp_path: Path) -> VectorSearchServicer:
    settings = VectorSearchSettings(data_dir=tmp_path)
    pools = {name: ThreadPoolExecutor(1) for name in ("search", "batch", "write")}
    hist = latency_histogram("t_seconds", "t", ("method", "code"), CollectorRegistry())
    return VectorSearchServicer(IndexRegistry(tmp_path), settings, pools, hist)


async def test_vs_expired_deadline_is_not_started(servicer: VectorSearchServicer) -> None:
    ran = []
    ctx = FakeContext(0.0)
    with pytest.raises(Aborted):
        await servicer._run(ctx, "Search", "search", lambda: ran.append(1))
    assert ctx.code == grpc.StatusCode.DEADLINE_EXCEEDED and not ran


async def test_vs_slow_call_answers_deadline_exceeded(servicer: VectorSearchServicer) -> None:
    ctx = FakeContext(0.05)
    with pytest.raises(Aborted):
        await servicer._run(ctx, "Search", "search", lambda: time.sleep(0.5))
    assert ctx.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_vs_domain_error_maps_to_status(servicer: VectorSearchServicer) -> None:
    def boom() -> None:
        raise errors.IndexNotFound("no index")

    ctx = FakeContext(None)
    with pytest.raises(Aborted):
        await servicer._run(ctx, "Search", "search", boom)
    assert ctx.code == grpc.StatusCode.NOT_FOUND
    assert status_for(errors.DimensionMismatch("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(errors.ResourceExhausted("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("kind", ["HNSW", "Flat"])
async def test_vs_searches_run_on_the_search_pool_not_the_event_loop(
    tmp_path: Path, kind: str
) -> None:
    """The loop thread only parses and replies; every search, however cheap, runs on the
    pool, so concurrent searches use every core."""
    import threading

    import numpy as np

    from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb

    settings = VectorSearchSettings(data_dir=tmp_path)
    pools = {n: ThreadPoolExecutor(1, f"vs-{n}") for n in ("search", "batch", "write")}
    hist = latency_histogram("t_seconds", "t", ("method", "code"), CollectorRegistry())
    reg = IndexRegistry(tmp_path)
    svc = VectorSearchServicer(reg, settings, pools, hist)
    spec = pb.IndexSpec(name="shoes/x", dimension=8, kind=kind)
    await svc.CreateIndex(pb.CreateIndexRequest(spec=spec), FakeContext(None))
    x = np.random.default_rng(0).standard_normal((300, 8)).astype("float32")
    items = [pb.Item(id=str(i), vector=v.tolist()) for i, v in enumerate(x)]
    await svc.Upsert(pb.UpsertRequest(index="shoes/x", items=items), FakeContext(None))
    index = reg.get("shoes/x")
    threads: list[str] = []
    real = index.search

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    index.search = spy  # type: ignore[method-assign]
    query = pb.Query(vector=pb.Vector(values=x[0].tolist()))
    reply = await svc.Search(pb.SearchRequest(index="shoes/x", query=query, k=5), FakeContext(None))
    assert reply.hits[0].id == "0"
    assert threads and all(t.startswith("vs-search") for t in threads), threads
    reg.close()
    for pool in pools.values():
        pool.shutdown()
