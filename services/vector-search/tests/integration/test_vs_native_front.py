"""The native Search front: the same answers as the Python path, writes seen at once, every
call it does not answer forwarded (and answered by Python), and nothing lost over a restart."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from vector_search.config import VectorSearchSettings
from vector_search.native.front import DEFAULT_LIB
from vector_search.transport.server import SERVICE, VectorSearchServer, build_server

pytestmark = pytest.mark.integration
DIM = 16


def _grpc_cpp_installed() -> bool:
    if shutil.which("pkg-config") is None:
        return False
    return subprocess.run(["pkg-config", "--exists", "grpc++"], check=False).returncode == 0


def test_vs_native_front_is_built_where_grpc_cpp_is_installed() -> None:
    if not _grpc_cpp_installed():
        pytest.skip("gRPC C++ not installed (make system-deps): the service serves from Python")
    assert DEFAULT_LIB.exists(), "make install builds it (services/vector-search/native/build.sh)"


needs_front = pytest.mark.skipif(
    not DEFAULT_LIB.exists(), reason="native front not built (needs gRPC C++: make system-deps)"
)


class Served:
    def __init__(
        self, app: VectorSearchServer, channel: grpc.aio.Channel, metrics: CollectorRegistry
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.channel = channel
        self.stub = pb_grpc.VectorSearchStub(channel)

    def stats(self) -> dict[str, int]:
        assert self.app.native is not None
        return self.app.native.stats()


async def _serve(data_dir: Path, native: str) -> Served:
    settings = VectorSearchSettings(data_dir=data_dir, port=0, native=native)  # type: ignore[arg-type]
    metrics = CollectorRegistry()
    app = build_server(settings, metrics)
    await app.start()
    big = [
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20),
    ]
    return Served(app, grpc.aio.insecure_channel(f"127.0.0.1:{app.port}", options=big), metrics)


async def _close(served: Served) -> None:
    await served.channel.close()
    await served.app.close(0)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The service with its native front."""
    running = await _serve(tmp_path, "on")
    yield running
    await asyncio.wait_for(_close(running), 20)  # a forwarded call left open must not hang it


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Served, Served]]:
    """The front, and the Python path alone, each with its own data directory."""
    front, plain = await _serve(tmp_path / "front", "on"), await _serve(tmp_path / "py", "off")
    yield front, plain
    await _close(front)
    await _close(plain)


def _vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _items(x: np.ndarray, start: int = 0) -> list[pb.Item]:
    return [
        pb.Item(id=f"p{start + i}", vector=v.tolist(), metadata={"n": str(start + i), "c": "red"})
        for i, v in enumerate(x)
    ]


async def _create(stub: pb_grpc.VectorSearchStub, name: str, kind: str, metric: int) -> None:
    spec = pb.IndexSpec(name=name, dimension=DIM, metric=metric, kind=kind)
    await stub.CreateIndex(pb.CreateIndexRequest(spec=spec))


def _search(index: str, v: np.ndarray, k: int, **kw: object) -> pb.SearchRequest:
    query = pb.Query(vector=pb.Vector(values=v.tolist()))
    return pb.SearchRequest(index=index, query=query, k=k, **kw)  # type: ignore[arg-type]


def _key(resp: pb.SearchResponse) -> list[tuple[str, float, dict[str, str]]]:
    return [(h.id, round(h.distance, 5), dict(h.metadata)) for h in resp.hits]


@needs_front
@pytest.mark.parametrize(
    ("kind", "metric"),
    [("HNSW", pb.METRIC_L2), ("HNSW", pb.METRIC_INNER_PRODUCT), ("Flat", pb.METRIC_L2)],
)
async def test_vs_native_front_answers_as_python_does(pair, kind: str, metric: int) -> None:
    front, plain = pair
    x = _vectors(1500, 0)
    for s in pair:
        await _create(s.stub, "shoes/m", kind, metric)
        await s.stub.Upsert(pb.UpsertRequest(index="shoes/m", items=_items(x)))
    queries = _vectors(30, 1)
    before = front.stats()
    for i, q in enumerate(queries):
        k = (1, 5, 10)[i % 3]
        a = await front.stub.Search(_search("shoes/m", q, k))
        b = await plain.stub.Search(_search("shoes/m", q, k))
        assert _key(a) == _key(b) and len(a.hits) == k
        assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-6)
        assert a.generation == b.generation == 1
    after = front.stats()
    assert after["native"] - before["native"] == len(queries)  # none went to Python
    assert after["forwarded"] == before["forwarded"]
    sample = front.metrics.get_sample_value
    assert sample("vector_search_front_calls_total", {"path": "native"}) == after["native"]
    assert sample("vector_search_front_calls_total", {"path": "forwarded"}) == after["forwarded"]
    # deletes and overwrites (HNSW keeps them as tombstones until compaction): still the same
    # answers, still native, the queries aimed at the items that are gone
    gone, moved = [f"p{i}" for i in range(0, 300, 3)], _items(_vectors(100, 9), 1000)
    for item, i in zip(moved, range(1, 300, 3), strict=True):
        item.id, item.metadata["n"] = f"p{i}", "moved"
    for s in pair:
        await s.stub.Delete(pb.DeleteRequest(index="shoes/m", ids=gone))
        await s.stub.Upsert(pb.UpsertRequest(index="shoes/m", items=moved))
    before = front.stats()
    for i in range(0, 300, 10):
        a = await front.stub.Search(_search("shoes/m", x[i], 10))
        b = await plain.stub.Search(_search("shoes/m", x[i], 10))
        assert _key(a) == _key(b) and len(a.hits) == 10 and a.generation == 3
        assert not {h.id for h in a.hits} & set(gone)
    assert front.stats()["native"] - before["native"] == 30


@needs_front
async def test_vs_native_front_forwards_what_it_does_not_answer(pair) -> None:
    front, plain = pair
    x = _vectors(300, 2)
    for s in pair:
        await _create(s.stub, "shoes/m", "HNSW", pb.METRIC_L2)
        await s.stub.Upsert(pb.UpsertRequest(index="shoes/m", items=_items(x)))
    cases = [
        _search("shoes/m", x[0], 5, filters=[pb.Filter(key="n", values=["1", "2", "3"])]),
        _search("shoes/m", x[0], 5, params=pb.SearchParams(ef_search=300)),
        _search("shoes/m", x[0], 200),  # k above the index's efSearch (128)
        pb.SearchRequest(index="shoes/m", query=pb.Query(id="p7"), k=4),
    ]
    before = front.stats()
    for req in cases:
        assert _key(await front.stub.Search(req)) == _key(await plain.stub.Search(req))
    bad = [
        _search("shoes/m", x[0][:8], 5),  # wrong dimension
        _search("nope/m", x[0], 5),
        _search("shoes/m", x[0], 5000),  # above max_k
    ]
    for req in bad:
        with pytest.raises(grpc.aio.AioRpcError) as got:
            await front.stub.Search(req)
        with pytest.raises(grpc.aio.AioRpcError) as want:
            await plain.stub.Search(req)
        assert (got.value.code(), got.value.details()) == (want.value.code(), want.value.details())
    assert front.stats()["forwarded"] - before["forwarded"] == len(cases) + len(bad)
    assert front.stats()["native"] == before["native"]


@needs_front
@pytest.mark.parametrize("kind", ["HNSW", "Flat"])
async def test_vs_native_front_sees_every_write(served: Served, kind: str) -> None:
    stub = served.stub
    await _create(stub, "shoes/m", kind, pb.METRIC_L2)
    x = _vectors(400, 3)
    await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=_items(x[:300])))
    # a new item, found at once with its metadata and the write's generation
    up = await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=_items(x[300:301], 300)))
    res = await stub.Search(_search("shoes/m", x[300], 3))
    assert res.hits[0].id == "p300" and res.hits[0].metadata["n"] == "300"
    assert res.generation == up.generation == 2
    # an overwrite: same id, new vector and metadata
    item = pb.Item(id="p5", vector=x[301].tolist(), metadata={"n": "new"})
    await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=[item]))
    res = await stub.Search(_search("shoes/m", x[301], 3))
    assert res.hits[0].id == "p5" and dict(res.hits[0].metadata) == {"n": "new"}
    assert "p5" not in {h.id for h in (await stub.Search(_search("shoes/m", x[5], 10))).hits}
    # a delete: gone from every answer (HNSW's tombstones are searched by Python)
    await stub.Delete(pb.DeleteRequest(index="shoes/m", ids=["p7"]))
    res = await stub.Search(_search("shoes/m", x[7], 10))
    assert "p7" not in {h.id for h in res.hits} and res.generation == 4


@needs_front
async def test_vs_native_front_searches_while_writes_land(served: Served) -> None:
    """Searches on every core while upserts replace the index's items: no torn answer."""
    stub = served.stub
    await _create(stub, "shoes/m", "Flat", pb.METRIC_L2)
    x = _vectors(2000, 4)
    await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=_items(x[:1000])))

    async def write() -> None:
        for start in range(1000, 2000, 100):
            await stub.Upsert(
                pb.UpsertRequest(index="shoes/m", items=_items(x[start : start + 100], start))
            )

    async def read(seed: int) -> list[pb.SearchResponse]:
        rng = np.random.default_rng(seed)
        return [
            await stub.Search(_search("shoes/m", x[int(rng.integers(0, 1000))], 5))
            for _ in range(150)
        ]

    results = await asyncio.gather(write(), *(read(s) for s in range(4)))
    for resp in (r for batch in results[1:] for r in batch):  # type: ignore[union-attr]
        assert len(resp.hits) == 5 and 1 <= resp.generation <= 11
        assert all(h.metadata["n"] == h.id[1:] for h in resp.hits)
    assert served.stats()["native"] >= 300


@needs_front
async def test_vs_native_front_after_restart_and_drop(tmp_path: Path) -> None:
    served = await _serve(tmp_path, "on")
    x = _vectors(500, 5)
    await _create(served.stub, "shoes/m", "HNSW", pb.METRIC_L2)
    await served.stub.Upsert(pb.UpsertRequest(index="shoes/m", items=_items(x)))
    want = _key(await served.stub.Search(_search("shoes/m", x[9], 10)))
    await _close(served)

    served = await _serve(tmp_path, "on")  # snapshot or WAL replay, then the mirror rebuilt
    stub = served.stub
    try:
        before = served.stats()["native"]
        assert _key(await stub.Search(_search("shoes/m", x[9], 10))) == want
        assert served.stats()["native"] == before + 1
        await stub.DropIndex(pb.DropIndexRequest(index="shoes/m"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Search(_search("shoes/m", x[9], 10))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        spec = pb.IndexSpec(name="shoes/m", dimension=8, metric=pb.METRIC_L2, kind="Flat")
        await stub.CreateIndex(pb.CreateIndexRequest(spec=spec))
        item = pb.Item(id="a", vector=[1.0] + [0.0] * 7, metadata={"n": "a"})
        await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=[item]))
        res = await stub.Search(
            pb.SearchRequest(
                index="shoes/m", query=pb.Query(vector=pb.Vector(values=item.vector)), k=3
            )
        )
        assert [h.id for h in res.hits] == ["a"]
    finally:
        await _close(served)


async def test_vs_native_front_required_but_missing_is_an_error(tmp_path: Path) -> None:
    settings = VectorSearchSettings(
        data_dir=tmp_path, port=0, native="on", native_lib=tmp_path / "missing.so"
    )
    with pytest.raises(OSError, match="native front required"):
        build_server(settings, CollectorRegistry())
    off = build_server(VectorSearchSettings(data_dir=tmp_path, native="off"), CollectorRegistry())
    assert off.native is None


@needs_front
async def test_vs_native_front_forwards_streaming_calls(served: Served) -> None:
    """Reflection (both sides stream) and health Watch (the server streams) pass through."""
    reflection = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    asks = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    answers = [a async for a in reflection.ServerReflectionInfo(iter(asks))]
    names = {s.name for s in answers[0].list_services_response.service}
    assert SERVICE in names and "grpc.health.v1.Health" in names
    assert answers[1].file_descriptor_response.file_descriptor_proto
    watch = health_pb2_grpc.HealthStub(served.channel).Watch(
        health_pb2.HealthCheckRequest(service=SERVICE)
    )
    first = await watch.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()  # the front cancels the call it forwarded; close() below must not hang
    assert served.stats()["forwarded"] == 2


@needs_front
async def test_vs_native_front_keeps_hits_right_through_compaction(served: Served) -> None:
    """Overwrites leave dead records in the front's arena; once half of it is dead it is
    rewritten (memory drops) and every hit still carries its item's latest metadata."""
    stub = served.stub
    await _create(stub, "shoes/m", "Flat", pb.METRIC_L2)
    x = _vectors(200, 6)
    blob = "x" * 4000  # one value for every item: Python's value table holds it once
    memory = []
    for round_ in range(3):
        items = [
            pb.Item(
                id=f"p{i}",
                vector=v.tolist(),
                metadata={"n": str(i), "r": str(round_), "b": blob},
            )
            for i, v in enumerate(x)
        ]
        await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=items))
        info = await stub.DescribeIndex(pb.DescribeIndexRequest(index="shoes/m"))
        memory.append(info.info.memory_bytes)
    assert memory[2] < memory[1] - 500_000  # 2 of 3 rounds dead: the arena was rewritten
    before = served.stats()["native"]
    for i in (0, 77, 199):
        hit = (await stub.Search(_search("shoes/m", x[i], 1))).hits[0]
        assert hit.id == f"p{i}" and dict(hit.metadata) == {"n": str(i), "r": "2", "b": blob}
    assert served.stats()["native"] == before + 3


@needs_front
async def test_vs_native_front_leaves_an_index_with_huge_metadata_to_python(served: Served) -> None:
    stub = served.stub
    await _create(stub, "shoes/m", "Flat", pb.METRIC_L2)
    x = _vectors(50, 7)
    await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=_items(x)))
    huge = pb.Item(id="huge", vector=x[3].tolist(), metadata={"b": "y" * (17 << 20)})
    await stub.Upsert(pb.UpsertRequest(index="shoes/m", items=[huge]))
    before = served.stats()
    res = await stub.Search(_search("shoes/m", x[3], 2))
    assert {h.id for h in res.hits} == {"huge", "p3"}
    assert len(next(h for h in res.hits if h.id == "huge").metadata["b"]) == 17 << 20
    assert served.stats()["forwarded"] == before["forwarded"] + 1
