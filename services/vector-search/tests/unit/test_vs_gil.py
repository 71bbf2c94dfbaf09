"""Chunked copies and encodings equal the one-call versions, across chunk boundaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vector_search.index import gil
from vector_search.index.collection import Collection
from vector_search.index.snapshot import SnapshotData, load_latest, write_snapshot
from vector_search.index.spec import IndexSpec, SearchOptions


@pytest.mark.parametrize("n", [0, 1, gil.CHUNK - 1, gil.CHUNK, 2 * gil.CHUNK + 1])
def test_chunked_helpers_match_one_call(n: int) -> None:
    d = {f"id{i}": (i * 7) % 1000 for i in range(n)}
    assert gil.copy_list(d) == list(d)
    assert gil.copy_list(d.values()) == list(d.values())
    rows = list(d.values())
    assert np.array_equal(gil.int_array(rows, "int32"), np.array(rows, dtype="int32"))
    assert [x for part in gil.chunks(rows) for x in part] == rows


def test_snapshot_round_trip_across_many_chunks(tmp_path: Path, blobs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(gil, "CHUNK", 7)  # 200 items: every list in 29 chunks
    spec = IndexSpec("shoes/chunks", 8, kind="HNSW")
    x = blobs(200, 8)
    coll = Collection(spec)
    ids = [f"p{i}" for i in range(200)]
    coll.apply_upsert(1, ids, x, [{"title": f"t{i}", "c": str(i % 3)} for i in range(200)])
    coll.apply_delete(2, ids[::9])
    written = write_snapshot(tmp_path, SnapshotData(coll, tmp_path))
    assert len((written / "ids.jsonl").read_text().splitlines()) == -(-len(coll.ids) // 7)
    assert json.loads((written / "ids.jsonl").read_text().splitlines()[0]) == list(coll.ids)[:7]
    again = Collection(spec)
    assert load_latest(tmp_path, again)
    assert list(again.ids) == list(coll.ids) and again.generation == 2
    live = list(coll.ids)
    assert [m for _, m, _ in again.get(live)[0]] == [m for _, m, _ in coll.get(live)[0]]
    opts = SearchOptions(k=3)
    assert again.search(x[:10], opts, [None] * 10) == coll.search(x[:10], opts, [None] * 10)
