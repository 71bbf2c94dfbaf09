"""What "a vector store" is here: one suite, run on the FAISS service and on Milvus Lite.

FAISS: the real vector-search process from the system description, with its token.
Milvus: MilvusStore on a Milvus Lite file (HNSW, and IVF_FLAT with few probes so filtered
searches must not come back short). Each test works in its own fresh index.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from gateway.adapters.resilience import CallPolicy
from gateway.adapters.vector_search import VectorSearchClient
from gateway.domain.ports import VectorStore
from gateway.domain.types import StoredItem, VectorQuery
from gateway.errors import InvalidInput, NotFound

from .conftest import VS_TOKEN

pytestmark = pytest.mark.integration
DIM = 16


def open_store(backend: str, request, tmp_path) -> VectorStore:
    if backend == "faiss":
        address = request.getfixturevalue("vector_search")
        return VectorSearchClient(address, policy=CallPolicy(timeout_s=10.0), token=VS_TOKEN)
    milvus_store = pytest.importorskip("gateway.adapters.milvus_store")
    params = (
        milvus_store.HnswParams(m=8, ef=16)
        if backend == "milvus-hnsw"
        else milvus_store.IvfFlatParams(nlist=16, nprobe=1)
    )
    return milvus_store.MilvusStore(str(tmp_path / "milvus.db"), index=params, timeout_s=10.0)


@pytest.fixture(params=["faiss", "milvus-hnsw", "milvus-ivf"])
async def store(request, tmp_path) -> AsyncIterator[VectorStore]:
    opened = open_store(request.param, request, tmp_path)
    yield opened
    await opened.close()


@pytest.mark.parametrize("backend", ["faiss", "milvus-hnsw"])
async def test_a_new_client_serves_what_a_closed_one_wrote(
    backend, request, tmp_path, index
) -> None:
    """`make demo`'s order: the ingest CLI writes and exits, then the gateway opens the
    store. A reopened Milvus Lite file has its collections released; reads must work."""
    x = vectors(12, seed=5)
    writer = open_store(backend, request, tmp_path)
    await writer.ensure_index(index, DIM)
    await writer.upsert(index, items(x))
    generation = await writer.generation(index)
    await writer.close()
    reader = open_store(backend, request, tmp_path)
    try:
        assert await reader.generation(index) == generation
        hits = (await reader.search(index, VectorQuery(x[3].tolist(), 3))).hits
        assert [h.id for h in hits] == brute_force(x, x[3], 3)
        got = await reader.get(index, "id7", with_vector=False)
        assert got is not None and got.metadata["n"] == "7"
        assert (await reader.list_items(index, 0, 5, {}))[1] == 12
        assert index in [s.name for s in await reader.list_indexes()]
    finally:
        await reader.close()


@pytest.fixture
def index() -> str:
    return f"contract{uuid.uuid4().hex[:10]}/m"


def vectors(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def items(x: np.ndarray, colour=lambda i: "blue") -> list[StoredItem]:
    return [
        StoredItem(f"id{i}", {"colour": colour(i), "n": str(i)}, x[i].tolist())
        for i in range(len(x))
    ]


def brute_force(x: np.ndarray, q: np.ndarray, k: int, rows=None) -> list[str]:
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    order = np.argsort(-(x[rows] @ q), kind="stable")[:k]
    return [f"id{rows[j]}" for j in order]


async def test_ensure_index_is_idempotent_and_listed(store, index) -> None:
    await store.ensure_index(index, DIM)
    await store.ensure_index(index, DIM)
    await store.upsert(index, items(vectors(5)))
    summary = {s.name: s for s in await store.list_indexes()}[index]
    assert (summary.dimension, summary.count) == (DIM, 5)
    assert summary.catalogue == index.split("/")[0] and summary.model == "m"
    with pytest.raises(InvalidInput):
        await store.ensure_index(index, DIM + 1)


async def test_upsert_get_replace_delete(store, index) -> None:
    x = vectors(3)
    await store.ensure_index(index, DIM)
    await store.upsert(index, items(x))
    got = await store.get(index, "id1", with_vector=True)
    assert got is not None and got.metadata == {"colour": "blue", "n": "1"}
    assert got.vector == pytest.approx(x[1].tolist(), abs=1e-6)
    assert (await store.get(index, "id1", with_vector=False)).vector is None
    await store.upsert(index, [StoredItem("id1", {"colour": "red"}, x[2].tolist())])
    got = await store.get(index, "id1", with_vector=True)
    assert got.metadata == {"colour": "red"}
    assert got.vector == pytest.approx(x[2].tolist(), abs=1e-6)
    assert {s.name: s.count for s in await store.list_indexes()}[index] == 3
    assert await store.delete(index, "id1") is True
    assert await store.delete(index, "id1") is False
    assert await store.get(index, "id1", with_vector=False) is None
    assert await store.get(index, "never", with_vector=False) is None


async def test_search_is_nearest_first_like_brute_force(store, index) -> None:
    x = vectors(300)
    await store.ensure_index(index, DIM)
    await store.upsert(index, items(x))
    for seed in range(5):
        q = vectors(1, seed=100 + seed)[0]
        outcome = await store.search(index, VectorQuery(q.tolist(), 10))
        assert [h.id for h in outcome.hits] == brute_force(x, q, 10)
        ips = [float(x[int(h.id[2:])] @ q) for h in outcome.hits]
        assert [h.distance for h in outcome.hits] == pytest.approx(ips, abs=1e-5)
        assert [h.score for h in outcome.hits] == pytest.approx([(d + 1) / 2 for d in ips], 1e-5)
        assert outcome.hits[0].metadata["colour"] == "blue" and not outcome.partial


async def test_rare_filter_still_returns_k(store, index) -> None:
    x = vectors(1000)
    red = [i for i in range(1000) if i % 67 == 5]  # 15 red items
    await store.ensure_index(index, DIM)
    await store.upsert(index, items(x, lambda i: "red" if i in red else "blue"))
    q = vectors(1, seed=7)[0]

    async def search(k: int, filters: dict[str, list[str]]) -> list:
        return (await store.search(index, VectorQuery(q.tolist(), k, filters))).hits

    hits = await search(10, {"colour": ["red"]})
    assert [h.id for h in hits] == brute_force(x, q, 10, red)
    assert all(h.metadata["colour"] == "red" for h in hits)
    assert len(await search(20, {"colour": ["green", "red"]})) == 15
    hits = await search(10, {"colour": ["red"], "n": ["5", "72"]})
    assert [h.id for h in hits] == brute_force(x, q, 10, [5, 72])
    assert await search(10, {"colour": ["nope"]}) == []


async def test_hostile_metadata_values_filter_exactly(store, index) -> None:
    x = vectors(4)
    values = ['a"b', "c\\", '"] or id != "', "x') or ('1"]
    await store.ensure_index(index, DIM)
    await store.upsert(
        index, [StoredItem(f"id{i}", {"k": v}, x[i].tolist()) for i, v in enumerate(values)]
    )
    for i, v in enumerate(values):
        hits = (await store.search(index, VectorQuery(x[0].tolist(), 4, {"k": [v]}))).hits
        assert [h.id for h in hits] == [f"id{i}"]
    page, total = await store.list_items(index, 0, 10, {"k": [values[2]]})
    assert ([i.id for i in page], total) == (["id2"], 1)


async def test_search_by_id_excludes_the_item(store, index) -> None:
    x = vectors(200)
    await store.ensure_index(index, DIM)
    await store.upsert(index, items(x))
    item = await store.get(index, "id42", with_vector=True)
    hits = (await store.search(index, VectorQuery(item.vector, 5, exclude_id="id42"))).hits
    assert [h.id for h in hits] == [i for i in brute_force(x, x[42], 6) if i != "id42"][:5]


async def test_generation_moves_on_writes_only(store, index) -> None:
    x = vectors(3)
    await store.ensure_index(index, DIM)
    seen = [await store.generation(index)]
    await store.upsert(index, items(x))
    seen.append(await store.generation(index))
    await store.upsert(index, [StoredItem("id0", {}, x[1].tolist())])
    seen.append(await store.generation(index))
    await store.delete(index, "id0")
    seen.append(await store.generation(index))
    assert len(set(seen)) == 4
    outcome = await store.search(index, VectorQuery(x[0].tolist(), 2))
    assert outcome.generation == seen[-1] == await store.generation(index)
    await store.delete(index, "id0")  # nothing deleted: nothing changed
    await store.get(index, "id1", with_vector=True)
    assert await store.generation(index) == seen[-1]


async def test_list_items_pages_in_insertion_order(store, index) -> None:
    x = vectors(25)
    colour = lambda i: "red" if i % 3 == 0 else "blue"  # noqa: E731
    await store.ensure_index(index, DIM)
    await store.upsert(index, items(x[:10], colour))
    await store.upsert(index, items(x, colour)[10:])
    await store.upsert(index, [StoredItem("id4", {"colour": "red"}, x[4].tolist())])
    ids, total = [], 0
    for offset in range(0, 30, 7):
        page, total = await store.list_items(index, offset, 7, {})
        ids += [i.id for i in page]
    assert (ids, total) == ([f"id{i}" for i in range(25)], 25)  # a replace keeps its place
    page, total = await store.list_items(index, 2, 3, {"colour": ["red"]})
    reds = [f"id{i}" for i in range(25) if i % 3 == 0 or i == 4]
    assert ([i.id for i in page], total) == (reds[2:5], len(reds))
    assert page[0].metadata["colour"] == "red" and page[0].vector is None


async def test_unknown_index_is_not_found(store, index) -> None:
    with pytest.raises(NotFound):
        await store.generation(index)
    with pytest.raises(NotFound):
        await store.search(index, VectorQuery([0.0] * DIM, 3))
    with pytest.raises(NotFound):
        await store.list_items(index, 0, 10, {})
    await store.check()


async def test_faiss_indexes_are_created_of_the_configured_kind(request, tmp_path, index) -> None:
    """GATEWAY_FAISS_INDEX picks the kind of new indexes (HNSW by default); an index that
    exists with another kind is kept and used; another dimension is refused."""
    address = request.getfixturevalue("vector_search")
    from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb

    async def kind_of(name: str) -> str:
        reply = await store._rpc("DescribeIndex", pb.DescribeIndexRequest(index=name))
        return reply.info.spec.kind

    policy = CallPolicy(timeout_s=10.0)
    store = VectorSearchClient(address, policy=policy, token=VS_TOKEN)
    flat = VectorSearchClient(address, policy=policy, token=VS_TOKEN, index_kind="Flat")
    try:
        await store.ensure_index(index, DIM)
        assert await kind_of(index) == "HNSW"
        await flat.ensure_index(index, DIM)  # exists as HNSW: kept, no error
        assert await kind_of(index) == "HNSW"
        other = index.replace("/m", "/flat")
        await flat.ensure_index(other, DIM)
        assert await kind_of(other) == "Flat"
        await store.ensure_index(other, DIM)
        x = vectors(20, seed=3)
        await store.upsert(other, items(x))
        hits = (await store.search(other, VectorQuery(x[4].tolist(), 3))).hits
        assert [h.id for h in hits] == brute_force(x, x[4], 3)
        with pytest.raises(InvalidInput, match=f"holds {DIM}-d vectors, not 8-d"):
            await store.ensure_index(other, 8)
    finally:
        await store.close()
        await flat.close()
