"""The gRPC surface on a real aio server (port 0): lifecycle, search, status codes, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from vector_search.config import VectorSearchSettings
from vector_search.transport.server import SERVICE, VectorSearchServer, build_server

pytestmark = pytest.mark.integration
DIM = 16


async def _start(data_dir: Path, **kw: object) -> VectorSearchServer:
    settings = VectorSearchSettings(data_dir=data_dir, port=0, **kw)  # type: ignore[arg-type]
    app = build_server(settings, CollectorRegistry())
    await app.start()
    return app


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[pb_grpc.VectorSearchStub]:
    app = await _start(tmp_path, max_batch=500, max_k=50)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield pb_grpc.VectorSearchStub(channel)
    await app.close(0)


def _items(n: int, start: int = 0) -> list[pb.Item]:
    rng = np.random.default_rng(start)
    x = rng.standard_normal((n, DIM)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return [
        pb.Item(
            id=f"p{start + i}",
            vector=x[i].tolist(),
            metadata={"class": ("heels", "boots")[i % 2], "colour": "red"},
        )
        for i in range(n)
    ]


async def _create(
    stub: pb_grpc.VectorSearchStub, kind: str = "Flat", name: str = "shoes/t"
) -> None:
    spec = pb.IndexSpec(name=name, dimension=DIM, metric=pb.METRIC_L2, kind=kind)
    resp = await stub.CreateIndex(pb.CreateIndexRequest(spec=spec))
    assert resp.created and resp.info.spec.kind == kind


async def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code()


async def test_vs_grpc_lifecycle_and_search(stub: pb_grpc.VectorSearchStub) -> None:
    await _create(stub, "HNSW")
    items = _items(200)
    up = await stub.Upsert(pb.UpsertRequest(index="shoes/t", items=items))
    assert up.upserted == 200 and up.generation == 1
    info = (await stub.DescribeIndex(pb.DescribeIndexRequest(index="shoes/t"))).info
    assert info.count == 200 and info.generation == 1 and info.memory_bytes > 200 * DIM * 4
    q = pb.Query(vector=pb.Vector(values=items[3].vector))
    res = await stub.Search(pb.SearchRequest(index="shoes/t", query=q, k=5))
    assert len(res.hits) == 5 and res.hits[0].id == "p3" and res.hits[0].score > 0.99
    mlt = await stub.Search(pb.SearchRequest(index="shoes/t", query=pb.Query(id="p3"), k=5))
    assert len(mlt.hits) == 5 and "p3" not in {h.id for h in mlt.hits}
    flt = [pb.Filter(key="class", values=["boots"])]
    res = await stub.Search(
        pb.SearchRequest(
            index="shoes/t", query=q, k=7, filters=flt, params=pb.SearchParams(ef_search=16)
        )
    )
    assert len(res.hits) == 7 and {h.metadata["class"] for h in res.hits} == {"boots"}
    dl = await stub.Delete(pb.DeleteRequest(index="shoes/t", ids=["p3", "zzz"]))
    assert dl.deleted == 1 and dl.generation == 2
    got = await stub.Get(pb.GetRequest(index="shoes/t", ids=["p3", "p4"], with_vectors=True))
    assert got.missing == ["p3"] and got.items[0].id == "p4"
    assert np.allclose(got.items[0].vector, items[4].vector)
    batch = await stub.BatchSearch(
        pb.BatchSearchRequest(
            requests=[
                pb.SearchRequest(index="shoes/t", query=pb.Query(id=f"p{i}"), k=3)
                for i in range(5, 15)
            ]
        )
    )
    assert [len(r.hits) for r in batch.responses] == [3] * 10
    assert batch.responses[0].hits[0].id != "p5"
    page = await stub.ListItems(pb.ListItemsRequest(index="shoes/t", offset=0, limit=3))
    assert page.total == 199 and [i.id for i in page.items] == ["p0", "p1", "p2"]
    listed = await stub.ListIndexes(pb.ListIndexesRequest())
    assert [i.spec.name for i in listed.indexes] == ["shoes/t"]
    await stub.DropIndex(pb.DropIndexRequest(index="shoes/t"))
    assert not (await stub.ListIndexes(pb.ListIndexesRequest())).indexes


async def test_vs_grpc_status_codes(stub: pb_grpc.VectorSearchStub) -> None:
    await _create(stub)
    await stub.Upsert(pb.UpsertRequest(index="shoes/t", items=_items(20)))
    q = pb.Query(vector=pb.Vector(values=[0.0] * DIM))
    NF, IA = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(stub.Search(pb.SearchRequest(index="nope/x", query=q, k=1))) == NF
    assert (
        await _code(stub.Search(pb.SearchRequest(index="shoes/t", query=pb.Query(id="zz"), k=1)))
        == NF
    )
    bad = pb.Query(vector=pb.Vector(values=[0.0] * (DIM + 1)))
    assert await _code(stub.Search(pb.SearchRequest(index="shoes/t", query=bad, k=1))) == IA
    wide = pb.Item(id="w", vector=[0.0] * 3)
    assert await _code(stub.Upsert(pb.UpsertRequest(index="shoes/t", items=[wide]))) == IA
    assert await _code(stub.Search(pb.SearchRequest(index="shoes/t", query=q, k=51))) == IA
    assert await _code(stub.Upsert(pb.UpsertRequest(index="shoes/t", items=_items(501)))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    spec = pb.IndexSpec(name="shoes/t", dimension=DIM + 1)
    assert await _code(stub.CreateIndex(pb.CreateIndexRequest(spec=spec, exist_ok=True))) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    same = pb.IndexSpec(name="shoes/t", dimension=DIM, kind="Flat")
    assert not (await stub.CreateIndex(pb.CreateIndexRequest(spec=same, exist_ok=True))).created
    bad_kind = pb.IndexSpec(name="shoes/u", dimension=DIM, kind="LSH")
    assert await _code(stub.CreateIndex(pb.CreateIndexRequest(spec=bad_kind))) == IA


async def test_vs_grpc_health_and_restart(tmp_path: Path) -> None:
    app = await _start(tmp_path)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        stub = pb_grpc.VectorSearchStub(channel)
        await _create(stub, "IVF", "bags/ivf")
        await stub.Upsert(pb.UpsertRequest(index="bags/ivf", items=_items(50)), timeout=5)
    await app.close(0)  # writes a snapshot
    app = await _start(tmp_path)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = pb_grpc.VectorSearchStub(channel)
        info = (await stub.DescribeIndex(pb.DescribeIndexRequest(index="bags/ivf"))).info
        assert info.count == 50 and info.generation == 1 and not info.trained
    await app.close(0)
