"""Snapshot formats: format 1 (one ``[id, label, meta]`` per item, the layout written before
compact metadata) still opens; what it turns into is written back as format 3 (arrays and
chunked id lists, one copy of the vectors on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from vector_search.index.collection import Collection
from vector_search.index.engine import Engine
from vector_search.index.managed import write_spec
from vector_search.index.snapshot import SnapshotData, load_latest, write_snapshot
from vector_search.index.spec import Filter, IndexSpec, SearchOptions

DIM, N = 16, 40


def _write_format1(directory: Path, spec: IndexSpec, x: np.ndarray) -> list[str]:
    """What the previous ``Collection.export`` + ``write_snapshot`` left on disk."""
    ids = [f"a{i}" for i in range(N)]  # browsing order
    labels = {ext: 3 * i + 5 for i, ext in enumerate(ids)}  # sparse, as after churn
    rows = ids[::-1]  # rows were in swap-remove order, not browsing order
    engine = Engine(spec)
    vectors = np.stack([x[int(ext[1:])] for ext in rows])
    row_labels = np.array([labels[e] for e in rows], dtype="int64")
    tombstones = []
    if spec.kind == "HNSW":  # a deleted item still in the graph
        engine.add(x[N : N + 1], np.array([2], dtype="int64"))
        tombstones = [2]
    engine.add(vectors, row_labels)
    state = {
        "generation": 7,
        "next_label": 200,
        "items": [
            [e, labels[e], {"colour": "red" if i % 4 == 0 else "blue", "n": str(i)}]
            for i, e in enumerate(ids)
        ],
        "tombstones": tombstones,
        "trained_on": 0,
    }
    snap = directory / f"snap-{7:020d}"
    snap.mkdir(parents=True)
    (snap / "state.json").write_text(json.dumps(state))
    np.save(snap / "vectors.npy", vectors)
    np.save(snap / "labels.npy", row_labels)
    faiss.write_index(engine.base, str(snap / "base.faiss"))
    return ids


def _check(coll: Collection, ids: list[str], x: np.ndarray) -> None:
    assert coll.count == N and coll.generation == 7 and list(coll.ids) == ids
    ((ext, meta, vec),) = coll.get(["a5"])[0]
    assert meta == {"colour": "blue", "n": "5"} and np.array_equal(vec, x[5])
    page, total = coll.list_items(1, 3, (Filter("colour", ("red",)),))
    assert total == 10 and [e for e, _ in page] == ["a4", "a8", "a12"]
    hits = coll.search(x[: N + 1], SearchOptions(k=1), [None] * (N + 1))
    assert [row[0].id for row in hits[:N]] == ids
    assert hits[N][0].distance > 0  # x[N] itself is a tombstone (HNSW) or absent (Flat)
    assert hits[3][0].metadata == {"colour": "blue", "n": "3"}


@pytest.mark.parametrize("kind", ["HNSW", "Flat"])
def test_vs_format1_snapshot_loads_and_is_rewritten_as_format3(
    tmp_path: Path, kind: str, blobs
) -> None:  # type: ignore[no-untyped-def]
    spec = IndexSpec("shoes/old", DIM, kind=kind)
    x = blobs(N + 1, DIM)
    ids = _write_format1(tmp_path, spec, x)
    coll = Collection(spec)
    assert load_latest(tmp_path, coll)
    _check(coll, ids, x)

    coll.apply_upsert(8, ["a5", "b"], x[[6, 7]], [{"colour": "red"}, {"colour": "green"}])
    coll.apply_delete(9, ["a0"])
    assert coll.next_label == 200  # freed labels below the old high-water mark came back
    written = write_snapshot(tmp_path, SnapshotData(coll, tmp_path))
    state = json.loads((written / "state.json").read_text())
    assert state["format"] == 3 and state["count"] == N
    assert {p.name for p in tmp_path.iterdir()} == {written.name}  # the old one is gone
    again = Collection(spec)
    assert load_latest(tmp_path, again) and again.generation == 9
    assert list(again.ids) == list(coll.ids)
    for (e1, m1, v1), (e2, m2, v2) in zip(again.get(ids)[0], coll.get(ids)[0], strict=True):
        assert (e1, m1) == (e2, m2) and np.array_equal(v1, v2)
    hits = again.search(
        x[[6, 7]], SearchOptions(k=2, filters=(Filter("colour", ("red",)),)), ["a6", None]
    )
    assert [h.id for h in hits[0]][0] == "a5"


def test_vs_format1_snapshot_opens_in_a_managed_index(tmp_path: Path, make_index, blobs) -> None:  # type: ignore[no-untyped-def]
    spec = IndexSpec("shoes/old", DIM, kind="HNSW")
    x = blobs(N + 1, DIM)
    directory = tmp_path / "idx"
    directory.mkdir()
    write_spec(directory, spec)
    ids = _write_format1(directory, spec, x)
    index = make_index(spec)
    _check(index.coll, ids, x)
    index.upsert(["c"], x[:1], [{"colour": "red"}])
    index.close()
    reopened = make_index(spec)  # the WAL write replays on top of the format-1 snapshot
    assert reopened.coll.count == N + 1 and reopened.coll.generation == 8
    assert reopened.get(["c"])[0][0][1] == {"colour": "red"}
    reopened.close()


def test_vs_snapshot_from_newer_code_is_refused(tmp_path: Path) -> None:
    coll = Collection(IndexSpec("shoes/new", DIM))
    state = {"format": 99, "generation": 1, "next_label": 0, "tombstones": []}
    with pytest.raises(ValueError, match="format 99"):
        coll.restore(state, np.zeros((0, DIM), "float32"), np.zeros(0, "int64"))
    snap = tmp_path / f"snap-{1:020d}"
    snap.mkdir()
    (snap / "state.json").write_text(json.dumps(state))
    np.save(snap / "labels.npy", np.zeros(0, "int64"))
    with pytest.raises(ValueError, match="format 99"):
        load_latest(tmp_path, Collection(IndexSpec("shoes/new", DIM)))


@pytest.mark.parametrize(
    ("kind", "pca", "files"),
    [
        ("HNSW", 0, {"base.faiss"}),  # the graph's storage holds the vectors
        ("Flat", 0, {"vectors.npy"}),  # refilled from the vectors on load
        ("HNSW", 8, {"base.faiss", "vectors.npy", "transform.faiss"}),
        ("IVF", 0, {"base.faiss", "vectors.npy"}),
    ],
)
def test_vs_snapshot_round_trips_with_one_copy_of_the_vectors(
    tmp_path: Path, kind: str, pca: int, files: set[str], blobs
) -> None:  # type: ignore[no-untyped-def]
    params = {"nlist": "4"} if kind == "IVF" else {}
    spec = IndexSpec("shoes/rt", DIM, kind=kind, pca_dimension=pca, params=params)
    x = blobs(301, DIM)
    coll = Collection(spec)
    ids = [f"i{i}" for i in range(300)]
    metas = [{"colour": "é" if i % 3 else "red\n", "n": str(i)} for i in range(300)]
    coll.apply_upsert(1, ids, x[:300], metas)
    coll.train()
    coll.apply_delete(2, ids[:40:3])
    coll.apply_upsert(3, ["i1"], x[300:], [{"colour": "new"}])  # moves i1 in the rows
    written = write_snapshot(tmp_path, SnapshotData(coll, tmp_path))
    stored = {p.name for p in written.iterdir()}
    assert stored & {"vectors.npy", "base.faiss", "transform.faiss"} == files
    again = Collection(spec)
    assert load_latest(tmp_path, again)
    assert list(again.ids) == list(coll.ids) and again.generation == 3
    assert again.engine.base.ntotal == coll.engine.base.ntotal
    assert again.engine.tombstones == coll.engine.tombstones
    live = list(coll.ids)
    for (e1, m1, v1), (e2, m2, v2) in zip(again.get(live)[0], coll.get(live)[0], strict=True):
        assert (e1, m1) == (e2, m2) and np.array_equal(v1, v2)
    opts = SearchOptions(k=5, filters=(Filter("colour", ("é",)),))
    assert again.search(x[:20], opts, [None] * 20) == coll.search(x[:20], opts, [None] * 20)
    assert again.search(x[:20], SearchOptions(k=5), [None] * 20) == coll.search(
        x[:20], SearchOptions(k=5), [None] * 20
    )


@pytest.mark.parametrize("kind", ["HNSW", "Flat"])
def test_vs_snapshot_is_what_the_index_held_when_it_was_taken(
    tmp_path: Path, kind: str, blobs
) -> None:  # type: ignore[no-untyped-def]
    """``ManagedIndex.snapshot`` copies under the lock and serialises after it, while writes
    go on. A write in between that frees a metadata value (its last item deleted) and reuses
    its slot for a new value must not leak into the snapshot: it did (the value tables were
    shared, not copied), and a restart after SIGKILL then failed replaying a delete."""
    spec = IndexSpec("shoes/live", DIM, kind=kind)
    x = blobs(4, DIM)
    coll = Collection(spec)
    metas = [{"colour": "red"}, {"colour": "blue"}, {"colour": "blue"}]
    coll.apply_upsert(1, ["a", "b", "c"], x[:3], metas)
    data = SnapshotData(coll, tmp_path)  # under the lock
    coll.apply_delete(2, ["a"])  # after it: "red" has no item left, its slot is freed
    coll.apply_upsert(3, ["d"], x[3:4], [{"colour": "green"}])  # and reused
    write_snapshot(tmp_path, data)
    again = Collection(spec)
    assert load_latest(tmp_path, again) and again.generation == 1
    assert [(e, m) for e, m, _ in again.get(["a", "b", "c"])[0]] == list(
        zip(["a", "b", "c"], metas, strict=True)
    )
    again.apply_delete(2, ["a"])  # the WAL replay that crashed
    again.apply_upsert(3, ["d"], x[3:4], [{"colour": "green"}])
    assert [m for _, m, _ in again.get(["b", "c", "d"])[0]] == [*metas[1:], {"colour": "green"}]
