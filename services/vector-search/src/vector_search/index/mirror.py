"""What an index tells a search path outside Python (the native front) as it changes.

``Collection`` reports labels it gives and takes; ``ManagedIndex`` calls ``refresh`` at the
end of every write, under its write lock, and takes its lock from the mirror so a search
running outside Python and a writer exclude each other. ``NoMirror`` is the pure-Python
default: it does nothing and its lock is ``RWLock``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from vector_search.index.rwlock import RWLock


class IndexView(Protocol):
    """What ``refresh`` reads of a ``Collection``."""

    engine: Any
    refine: int
    generation: int

    @property
    def count(self) -> int: ...


class IndexLock(Protocol):
    def read(self) -> AbstractContextManager[None]: ...
    def read_long(self) -> AbstractContextManager[None]: ...
    def write(self) -> AbstractContextManager[None]: ...


class SearchMirror(Protocol):
    lock: IndexLock

    def added(
        self, labels: np.ndarray, ids: Sequence[str], metas: Sequence[dict[str, str]]
    ) -> None:
        """New labels and their items (labels may have been removed earlier in the write)."""

    def removed(self, labels: Sequence[int]) -> None:
        """Labels whose items are gone (or replaced)."""

    def refresh(self, coll: IndexView) -> None:
        """End of a write: engine, generation and count as they are now."""

    def rebuild(self, rows: Iterator[tuple[int, str, dict[str, str]]]) -> None:
        """After loading: every live (label, id, metadata)."""

    def detach(self) -> None:
        """The index is dropped (caller holds the write lock)."""

    def nbytes(self) -> int:
        """Resident bytes the mirror adds."""


class NoMirror:
    """Nothing outside Python searches this index."""

    def __init__(self) -> None:
        self.lock = RWLock()

    def added(
        self, labels: np.ndarray, ids: Sequence[str], metas: Sequence[dict[str, str]]
    ) -> None:
        return None

    def removed(self, labels: Sequence[int]) -> None:
        return None

    def refresh(self, coll: IndexView) -> None:
        return None

    def rebuild(self, rows: Iterator[tuple[int, str, dict[str, str]]]) -> None:
        return None

    def detach(self) -> None:
        return None

    def nbytes(self) -> int:
        return 0
