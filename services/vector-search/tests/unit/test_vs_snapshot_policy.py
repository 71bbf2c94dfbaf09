"""When a periodic snapshot is due: enough of the index written, or the writes are old."""

from __future__ import annotations

import time

import pytest

from vector_search.index import managed
from vector_search.index.managed import SnapshotPolicy
from vector_search.index.spec import IndexSpec

DIM = 8


def test_a_big_index_waits_for_a_fraction_of_its_items(make_index, blobs) -> None:  # type: ignore[no-untyped-def]
    index = make_index(IndexSpec("shoes/big", DIM, kind="Flat"))
    x = blobs(130, DIM)
    index.upsert([f"a{i}" for i in range(100)], x[:100], [{}] * 100)
    policy = SnapshotPolicy(min_writes=1, min_fraction=0.2, max_age_s=3600)
    assert index.snapshot(policy)  # 100 items written into an empty index
    for i in range(19):  # one write per item: 19 of 119 items, under 20 %
        index.upsert([f"b{i}"], x[100 + i : 101 + i], [{}])
    assert not index.snapshot(policy)
    index.delete([f"a{i}" for i in range(5)])  # deletes count too: 24 of 114 items
    assert index.snapshot(policy)
    assert not index.snapshot(policy)  # nothing written since
    index.close()


def test_old_writes_are_snapshotted_however_few(make_index, blobs) -> None:  # type: ignore[no-untyped-def]
    index = make_index(IndexSpec("shoes/old", DIM, kind="Flat"))
    x = blobs(101, DIM)
    index.upsert([f"a{i}" for i in range(100)], x[:100], [{}] * 100)
    assert index.snapshot()
    index.upsert(["late"], x[100:], [{}])
    policy = SnapshotPolicy(min_writes=1, min_fraction=0.5, max_age_s=0.2)
    assert not index.snapshot(policy)
    time.sleep(0.25)
    assert index.snapshot(policy)
    index.close()


def test_writes_replayed_on_open_are_pending(make_index, blobs) -> None:  # type: ignore[no-untyped-def]
    spec = IndexSpec("shoes/replay", DIM, kind="Flat")
    index = make_index(spec)
    index.upsert(["a", "b"], blobs(2, DIM), [{}, {}])
    index.close()  # no snapshot: the writes are in the WAL only
    reopened = make_index(spec)
    assert not reopened.snapshot(SnapshotPolicy(min_writes=2))  # one write, replayed
    assert reopened.snapshot(SnapshotPolicy(min_writes=1, min_fraction=1.0, max_age_s=3600))
    reopened.close()


def test_a_failed_snapshot_leaves_its_writes_pending(make_index, blobs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    index = make_index(IndexSpec("shoes/full", DIM, kind="Flat"))
    index.upsert([f"a{i}" for i in range(10)], blobs(10, DIM), [{}] * 10)
    policy = SnapshotPolicy(min_writes=1, min_fraction=0.5, max_age_s=3600)

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(managed, "write_snapshot", disk_full)
    with pytest.raises(OSError):
        index.snapshot(policy)
    monkeypatch.undo()
    assert index.snapshot(policy)  # still due: the 10 items were not lost from the count
    index.close()
