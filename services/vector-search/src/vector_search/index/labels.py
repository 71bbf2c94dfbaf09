"""FAISS labels of a collection's rows, handed out again once FAISS no longer holds them."""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np


class Labels:
    """label -> row as an int32 array (-1: free or tombstoned), plus a stack of free labels.

    Reusing labels keeps the array about as long as the collection, however many writes
    it has seen; a label still in FAISS (an HNSW tombstone) is not free until compaction.
    """

    def __init__(self) -> None:
        self.next = 0  # high-water mark: every label ever handed out is below it
        self.row = np.full(16, -1, dtype="int32")
        self.free = array("q")

    def new(self, rows: np.ndarray) -> np.ndarray:
        """Labels for new ``rows``: free ones first."""
        k = len(rows)
        take = min(k, len(self.free))
        reused = np.array(self.free[len(self.free) - take :], dtype="int64")
        del self.free[len(self.free) - take :]
        fresh = np.arange(self.next, self.next + k - take, dtype="int64")
        self.next += k - take
        self._grow(self.next)
        labels = np.concatenate([reused, fresh])
        self.row[labels] = rows
        return labels

    def release(self, labels: Iterable[int]) -> None:
        """FAISS no longer holds these labels: hand them out again."""
        self.free.extend(labels)

    def reclaim(self, tombstones: set[int]) -> None:
        """Every label below ``next`` that is neither live nor a tombstone is free."""
        dead = self.row[: self.next] < 0
        if tombstones:
            dead[np.fromiter(tombstones, dtype="int64")] = False
        self.free = array("q", np.flatnonzero(dead).tolist())

    def restore(self, next_label: int, labels: np.ndarray, tombstones: set[int]) -> None:
        """Rows ``0..len(labels)-1`` hold ``labels``; the rest up to ``next_label`` is free."""
        self.next = max(next_label, int(labels.max(initial=-1)) + 1)
        self._grow(self.next)
        self.row[labels] = np.arange(len(labels))
        self.reclaim(tombstones)

    def row_of(self, label: int) -> int:
        return int(self.row[label]) if 0 <= label < len(self.row) else -1

    def nbytes(self) -> int:
        return self.row.nbytes + 8 * len(self.free)

    def _grow(self, need: int) -> None:
        if need > len(self.row):
            row = np.full(max(need, 2 * len(self.row)), -1, dtype="int32")
            row[: len(self.row)] = self.row
            self.row = row
