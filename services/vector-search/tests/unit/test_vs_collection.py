"""Index semantics: exact answers, deletes, filters that still return k, training, recall."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from vector_search.errors import DimensionMismatch, ItemNotFound
from vector_search.index.collection import Collection
from vector_search.index.snapshot import SnapshotData, load_latest, write_snapshot
from vector_search.index.spec import Filter, IndexSpec, SearchOptions

PQ = {"train_threshold": "2000"}
KINDS = [
    ("Flat", 0, {}),
    ("IVF", 0, {}),
    ("HNSW", 0, {}),
    ("IVF-PQ", 0, PQ),
    ("IVF", 16, {}),
    ("IVF-PQ", 16, {"transform": "OPQ", **PQ}),
]


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Blobs in a 12-dimensional subspace: like embeddings, most variance in few directions."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(42).standard_normal((12, dim))
    centres = rng.standard_normal((20, 12))
    z = centres[rng.integers(0, 20, n)] + 0.4 * rng.standard_normal((n, 12))
    x = z @ basis + 0.05 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def _matching(coll: Collection, filters: tuple[Filter, ...]) -> set[str]:
    page, total = coll.list_items(0, coll.count, filters)
    assert total == len(page)
    return {e for e, _ in page}


def _filled(kind: str, pca: int, params: dict[str, str], n: int = 3000, dim: int = 32):
    coll = Collection(IndexSpec("shoes/test", dim, "L2", kind, pca, params).validate())
    x = clustered(n, dim)
    ids = [f"p{i}" for i in range(n)]
    metas = [{"class": f"c{i % 5}", "colour": "red" if i % 97 == 0 else "blue"} for i in range(n)]
    coll.apply_upsert(1, ids, x, metas)
    return coll, x, ids


@pytest.mark.parametrize(("kind", "pca", "params"), KINDS)
def test_vs_filtered_search_returns_exactly_k(kind: str, pca: int, params: dict[str, str]) -> None:
    coll, x, _ = _filled(kind, pca, params)
    assert coll.engine.trained
    reds = {f"p{i}" for i in range(3000) if i % 97 == 0}  # 31 matches: the rare case
    for filters, allowed in [
        ((Filter("colour", ("red",)),), reds),
        ((Filter("class", ("c1", "c3")),), None),  # 40%: the approximate path
        ((Filter("class", ("c2",)), Filter("colour", ("red",))), None),
    ]:
        hits = coll.search(x[:20], SearchOptions(k=10, filters=filters), [None] * 20)
        matching = _matching(coll, filters)
        for row in hits:
            assert len(row) == min(10, len(matching))
            assert all(h.id in matching for h in row)
            if allowed is not None:
                assert {h.id for h in row} <= allowed


@pytest.mark.parametrize(("kind", "pca", "params"), KINDS)
def test_vs_recall_against_exact(kind: str, pca: int, params: dict[str, str]) -> None:
    coll, x, ids = _filled(kind, pca, params)
    q = clustered(50, 32, seed=9)
    _, truth = faiss.knn(q, x, 10)
    hits = coll.search(q, SearchOptions(k=10), [None] * 50)
    found = sum(
        len({h.id for h in row} & {ids[j] for j in t}) for row, t in zip(hits, truth, strict=True)
    )
    assert found / 500 >= 0.9, f"{kind}: recall {found / 500}"


def test_vs_untrained_index_answers_exactly_then_trains() -> None:
    coll = Collection(IndexSpec("shoes/ivf", 16, kind="IVF", params={"train_threshold": "500"}))
    x = clustered(400, 16)
    coll.apply_upsert(1, [f"p{i}" for i in range(400)], x, [{}] * 400)
    assert not coll.engine.trained
    hits = coll.search(x[:5], SearchOptions(k=3), [None] * 5)
    assert [row[0].id for row in hits] == [f"p{i}" for i in range(5)]
    assert hits[0][0].distance == pytest.approx(0.0, abs=1e-5)
    more = clustered(200, 16, seed=3)
    coll.apply_upsert(2, [f"q{i}" for i in range(200)], more, [{}] * 200)
    assert coll.engine.trained and coll.engine.base.ntotal == 600


def test_vs_upsert_replaces_and_delete_removes() -> None:
    coll, x, _ = _filled("HNSW", 0, {}, n=500)
    coll.apply_upsert(2, ["p0"], x[1:2], [{"class": "new"}])
    assert coll.count == 500 and coll.get(["p0"])[0][0][1] == {"class": "new"}
    assert list(coll.ids)[0] == "p0"  # browsing order is first-insertion order
    assert _matching(coll, (Filter("class", ("c0",)),)) == {f"p{i}" for i in range(5, 500, 5)}
    assert _matching(coll, (Filter("class", ("new",)),)) == {"p0"}
    assert _matching(coll, (Filter("class", ("c0", "nope")), Filter("x", ("y",)))) == set()
    assert coll.apply_delete(3, ["p1", "p1", "nope"]) == 1
    hits = coll.search(x[1:2], SearchOptions(k=5), [None])[0]
    assert "p1" not in {h.id for h in hits} and hits[0].id == "p0"
    with pytest.raises(ItemNotFound):
        coll.vector_of("p1")


def test_vs_more_like_this_excludes_self_and_ip_scores() -> None:
    coll = Collection(IndexSpec("bags/ip", 8, metric="IP"))
    x = clustered(100, 8)
    coll.apply_upsert(1, [f"p{i}" for i in range(100)], x, [{}] * 100)
    hits = coll.search(coll.vector_of("p7")[None], SearchOptions(k=5), ["p7"])[0]
    assert len(hits) == 5 and "p7" not in {h.id for h in hits}
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert [h.distance for h in hits] == sorted((h.distance for h in hits), reverse=True)


def test_vs_hnsw_tombstones_compact() -> None:
    coll, x, ids = _filled("HNSW", 0, {}, n=3000)
    coll.apply_delete(2, ids[:900])
    assert len(coll.engine.tombstones) == 900 and coll.engine.base.ntotal == 3000
    coll.apply_delete(3, ids[900:1200])
    assert coll.engine.base.ntotal == 1800 and not coll.engine.tombstones
    hits = coll.search(x[:10], SearchOptions(k=10), [None] * 10)
    assert all(len(r) == 10 and all(int(h.id[1:]) >= 1200 for h in r) for r in hits)


def test_vs_dimension_mismatch_and_list_items() -> None:
    coll, _, _ = _filled("Flat", 0, {}, n=50)
    with pytest.raises(DimensionMismatch):
        coll.search(np.zeros((1, 3), dtype="float32"), SearchOptions(k=1), [None])
    page, total = coll.list_items(10, 5, ())
    assert total == 50 and [e for e, _ in page] == [f"p{i}" for i in range(10, 15)]
    page, total = coll.list_items(0, 100, (Filter("class", ("c4",)),))
    assert total == 10 and [e for e, _ in page][:2] == ["p4", "p9"]


def test_vs_memory_estimate_is_kept_as_items_come_and_go(tmp_path: Path) -> None:
    """DescribeIndex reads memory_bytes on every refresh: it is made of running totals (not
    a walk over every item) that always equal what a walk would find."""
    from vector_search.index.collection import id_bytes
    from vector_search.index.metadata import value_bytes

    def walked(c: Collection) -> tuple[int, int]:
        values = [v for t in c._columns.tables for v in t.values if v is not None]
        return sum(map(id_bytes, c.ids)), sum(map(value_bytes, values))

    def kept(c: Collection) -> tuple[int, int]:
        return c._id_bytes, sum(t.nbytes for t in c._columns.tables)

    coll, x, ids = _filled("HNSW", 0, {}, n=600)
    assert kept(coll) == walked(coll)
    long = [{"class": f"a much longer value {i} " * 4} for i in range(50)]
    coll.apply_upsert(2, ids[:50], x[:50], long)
    coll.apply_delete(3, ids[100:180] + ["absent"])
    assert coll.count == 520 and kept(coll) == walked(coll)
    write_snapshot(tmp_path, SnapshotData(coll, tmp_path))
    again = Collection(coll.spec)
    assert load_latest(tmp_path, again)
    assert kept(again) == kept(coll)
    before = coll.memory_bytes()
    coll.apply_delete(4, ids[:50])  # the items with the long, distinct values
    assert kept(coll) == walked(coll)
    assert before - coll.memory_bytes() > 50 * (4 * 20 + len("p10"))

    class NoWalk(dict):  # type: ignore[type-arg]
        def values(self):  # type: ignore[no-untyped-def]
            raise AssertionError("memory_bytes walked every item")

        items = keys = __iter__ = values

    coll.ids = NoWalk(coll.ids)
    assert coll.memory_bytes() < before  # answered without walking


def test_vs_repeated_metadata_values_are_stored_once() -> None:
    coll, _, _ = _filled("Flat", 0, {}, n=1000)
    tables = dict(zip(coll._columns.names, coll._columns.tables, strict=True))
    assert sorted(v for v in tables["class"].values if v) == [f"c{i}" for i in range(5)]
    got = [m["class"] for _, m, _ in coll.get(["p1", "p6"])[0]]
    assert got == ["c1", "c1"] and got[0] is got[1]
    coll.apply_delete(2, [f"p{i}" for i in range(0, 1000, 97)])  # every red item
    assert "red" not in tables["colour"].index  # a value nobody uses any more is dropped
    coll.apply_upsert(3, ["new"], np.zeros((1, 32), "float32"), [{"colour": "red"}])
    assert _matching(coll, (Filter("colour", ("red",)),)) == {"new"}


@pytest.mark.parametrize("kind", ["Flat", "HNSW"])
def test_vs_labels_are_reused_once_faiss_no_longer_holds_them(kind: str) -> None:
    coll, x, ids = _filled(kind, 0, {}, n=2000)
    for gen in range(2, 6):  # churn: every write used to take a fresh label
        coll.apply_upsert(gen, ids[:500], x[500:1000], [{"class": "again"}] * 500)
    if kind == "HNSW":  # tombstones keep theirs until compaction rebuilds the graph
        assert coll.next_label == 4000 and len(coll.engine.tombstones) == 2000
        coll.apply_delete(6, ids[1500:])
        assert not coll.engine.tombstones
    else:
        assert coll.next_label == 2000
    coll.apply_upsert(7, ["fresh"], x[:1], [{}])
    assert coll.next_label <= 4000
    for i in (0, 499, 500, 1499):
        assert np.array_equal(coll.vector_of(ids[i]), x[500 + i if i < 500 else i])
    hits = coll.search(x[600:601], SearchOptions(k=3), [None])[0]
    assert hits[0].id in {"p100", "p600"} and hits[0].distance == pytest.approx(0.0, abs=1e-5)


def test_vs_hnsw_keeps_one_copy_of_each_vector() -> None:
    coll, x, ids = _filled("HNSW", 0, {}, n=1500, dim=256)
    assert coll._vecs is None  # rows point into the HNSW storage
    coll.apply_delete(2, ids[:1200])  # swap-removes, then compaction renumbers positions
    assert coll.engine.base.ntotal == 300
    for i in (1200, 1350, 1499):
        assert np.array_equal(coll.vector_of(ids[i]), x[i])
    beside_faiss = coll.memory_bytes() - coll.engine.memory_bytes()
    assert beside_faiss < coll.count * 4 * 256 // 2  # no second vector per item
