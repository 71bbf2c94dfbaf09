"""Item metadata as columns: one int32 value id per row and key, each distinct value kept once.

A catalogue repeats a few values ("Footwear", "Black", "true") across every item; storing a
dict per item repeats them too. Here a row holds only small ids, a per-key table holds each
string once, and a filter is a vectorised compare over one column (no inverted index to keep).
Rows follow the owning ``Collection``'s rows, swap-remove included.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np

from vector_search.index.gil import copy_list
from vector_search.index.spec import Filter

ABSENT = -1
VALUE_OVERHEAD = 64  # per distinct value beyond its str object: dict entry, list slot, count


def value_bytes(value: str) -> int:
    """Estimated resident size of one distinct value in a table."""
    return sys.getsizeof(value) + VALUE_OVERHEAD


class ValueTable:
    """The distinct values of one key, with live counts; ids of unused values are reused."""

    __slots__ = ("values", "index", "counts", "free", "nbytes")

    def __init__(self, values: Sequence[str | None] = (), counts: Sequence[int] = ()) -> None:
        self.values: list[str | None] = list(values)
        self.counts = array("q", counts or [0] * len(self.values))
        self.index: dict[str, int] = {}
        self.free: list[int] = []
        self.nbytes = 0
        for vid, value in enumerate(self.values):
            if value is None or self.counts[vid] == 0:
                self.values[vid] = None
                self.free.append(vid)
            else:
                self.index[value] = vid
                self.nbytes += value_bytes(value)

    def acquire(self, value: str) -> int:
        vid = self.index.get(value)
        if vid is None:
            if self.free:
                vid = self.free.pop()
                self.values[vid] = value
            else:
                vid = len(self.values)
                self.values.append(value)
                self.counts.append(0)
            self.index[value] = vid
            self.nbytes += value_bytes(value)
        self.counts[vid] += 1
        return vid

    def release(self, vid: int) -> None:
        self.counts[vid] -= 1
        if self.counts[vid] == 0:
            value = self.values[vid]
            assert value is not None
            del self.index[value]
            self.values[vid] = None
            self.free.append(vid)
            self.nbytes -= value_bytes(value)


class MetadataColumns:
    """Rows x keys int32 matrix of value ids (``ABSENT`` where an item lacks the key).

    Each key costs 4 bytes per row whether an item has it or not: fine for a catalogue's
    handful of keys, wasteful for thousands of sparse ones.
    """

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.names: list[str] = []
        self.tables: list[ValueTable] = []
        self.cols = np.full((16, 0), ABSENT, dtype="int32")

    def grow(self, rows: int) -> None:
        if rows > len(self.cols):
            cols = np.full((rows, len(self.names)), ABSENT, dtype="int32")
            cols[: len(self.cols)] = self.cols
            self.cols = cols

    def _add_key(self, key: str) -> int:
        self.keys[key] = len(self.names)
        self.names.append(key)
        self.tables.append(ValueTable())
        self.cols = np.hstack([self.cols, np.full((len(self.cols), 1), ABSENT, dtype="int32")])
        return self.keys[key]

    def set_row(self, row: int, meta: dict[str, str]) -> None:
        """Fill an empty row."""
        for key, value in meta.items():
            k = self.keys.get(key)
            if k is None:
                k = self._add_key(key)
            self.cols[row, k] = self.tables[k].acquire(value)

    def clear_row(self, row: int) -> None:
        for k, vid in enumerate(self.cols[row].tolist()):
            if vid != ABSENT:
                self.tables[k].release(vid)
        self.cols[row] = ABSENT

    def move(self, src: int, dst: int) -> None:
        """Swap-remove support: ``dst`` (already cleared) takes ``src``'s values."""
        self.cols[dst] = self.cols[src]
        self.cols[src] = ABSENT

    def get(self, row: int) -> dict[str, str]:
        return {
            self.names[k]: self.tables[k].values[vid]  # type: ignore[misc]
            for k, vid in enumerate(self.cols[row].tolist())
            if vid != ABSENT
        }

    def match(self, filters: Sequence[Filter], n: int) -> np.ndarray:
        """Rows (ascending) whose value is one of ``f.values`` for every filter ``f``."""
        mask = np.ones(n, dtype=bool)
        for f in filters:
            k = self.keys.get(f.key)
            table = self.tables[k] if k is not None else None
            vids = [table.index[v] for v in f.values if v in table.index] if table else []
            if not vids:
                return np.zeros(0, dtype="int64")
            col = self.cols[:n, k]
            mask &= col == vids[0] if len(vids) == 1 else np.isin(col, vids)
        return np.flatnonzero(mask)

    def nbytes(self) -> int:
        """Resident estimate: O(keys), independent of the number of items."""
        return self.cols.nbytes + sum(t.nbytes for t in self.tables)

    def export(self, n: int) -> tuple[list[str], list[list[str | None]], np.ndarray]:
        """Key names, each key's value table and the rows x keys value ids, all copies (the
        snapshot is written after the lock is released: writes go on and reuse value ids)."""
        values = [copy_list(t.values) for t in self.tables]
        return list(self.names), values, self.cols[:n].copy()

    @classmethod
    def restored(cls, data: dict[str, Any], n: int) -> MetadataColumns:
        """Inverse of ``export``."""
        out = cls()
        out.names = list(data)
        out.keys = {name: k for k, name in enumerate(out.names)}
        out.cols = np.full((max(n, 16), len(out.names)), ABSENT, dtype="int32")
        for k, col in enumerate(data.values()):
            rows = np.asarray(col["rows"], dtype="int32").reshape(n)
            out.cols[:n, k] = rows
            counts = np.bincount(rows[rows != ABSENT], minlength=len(col["values"]))
            out.tables.append(ValueTable(col["values"], counts.tolist()))
        return out
