"""WAL: records round-trip; replay stops at a torn or corrupt record and truncates there."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vector_search.index.wal import DELETE, UPSERT, WriteAheadLog, encode, segments


def _write(directory: Path, n: int) -> WriteAheadLog:
    wal = WriteAheadLog(directory, "always")
    wal.open(1)
    for gen in range(1, n + 1):
        vec = np.full((1, 4), gen, dtype="float32")
        wal.append(gen, encode(UPSERT, [f"id{gen}"], [{"class": "heels"}], vec))
    wal.append(n + 1, encode(DELETE, ["id1"], [], None))
    wal.close()
    return wal


def test_vs_wal_round_trip(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    records = list(WriteAheadLog(tmp_path).replay(4))
    assert [r.gen for r in records] == [1, 2, 3, 4]
    assert records[1].ids == ["id2"] and records[1].metas == [{"class": "heels"}]
    assert records[2].vectors is not None and records[2].vectors[0, 0] == 3.0
    assert records[3].kind == DELETE and records[3].ids == ["id1"]


def test_vs_wal_torn_tail_is_truncated_and_appends_stay_readable(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    seg = segments(tmp_path)[0]
    size = seg.stat().st_size
    with seg.open("r+b") as f:
        f.truncate(size - 3)  # the last record is torn
    wal = WriteAheadLog(tmp_path)
    assert [r.gen for r in wal.replay(4)] == [1, 2, 3]
    wal.open(4)
    wal.append(4, encode(DELETE, ["id2"], [], None))
    wal.close()
    records = list(WriteAheadLog(tmp_path).replay(4))
    assert [r.gen for r in records] == [1, 2, 3, 4] and records[-1].ids == ["id2"]


def test_vs_wal_corrupt_record_stops_replay(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    seg = segments(tmp_path)[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte inside record 2 or 3
    seg.write_bytes(bytes(data))
    gens = [r.gen for r in WriteAheadLog(tmp_path).replay(4)]
    assert gens == list(range(1, len(gens) + 1)) and len(gens) < 4


def test_vs_wal_rotation_and_drop(tmp_path: Path) -> None:
    wal = _write(tmp_path, 2)
    wal.open(4)
    keep = wal.rotate(4)
    wal.append(4, encode(DELETE, ["id2"], [], None))
    wal.close()
    assert len(segments(tmp_path)) == 2
    wal.drop_before(keep)
    assert [r.gen for r in WriteAheadLog(tmp_path).replay(4)] == [4]
