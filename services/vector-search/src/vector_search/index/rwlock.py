"""A writer-preferring reader/writer lock: many concurrent searches, one writer per index."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RWLock:
    """Writers go first: a waiting writer holds back new readers, so a stream of searches
    cannot starve ingest. The exception is a long reader (a snapshot copying the index):
    while one holds the lock, writers wait for it anyway, so holding new searches back as
    well would stall every search behind the snapshot for no gain.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._long_readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or (self._waiting_writers and not self._long_readers):
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            self._release_read(long=False)

    @contextmanager
    def read_long(self) -> Iterator[None]:
        """A reader that takes long (seconds): searches are let in past waiting writers."""
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
            self._long_readers += 1
        try:
            yield
        finally:
            self._release_read(long=True)

    def _release_read(self, long: bool) -> None:
        with self._cond:
            self._readers -= 1
            self._long_readers -= long
            if not self._readers:
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
