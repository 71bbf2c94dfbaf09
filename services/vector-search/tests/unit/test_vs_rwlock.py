"""The index lock: writers are preferred, except behind a long reader (a snapshot)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from vector_search.index.rwlock import RWLock


def _reader_gets_in(lock: RWLock, timeout: float = 0.5) -> bool:
    entered = threading.Event()

    def read() -> None:
        with lock.read():
            entered.set()

    threading.Thread(target=read, daemon=True).start()
    return entered.wait(timeout)


def _queue_writer(lock: RWLock) -> tuple[threading.Event, Callable[[], None]]:
    wrote = threading.Event()

    def write() -> None:
        with lock.write():
            wrote.set()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    while not lock._waiting_writers:  # queued behind the reader
        threading.Event().wait(0.001)
    return wrote, lambda: thread.join(5)


def test_a_waiting_writer_holds_new_searches_back() -> None:
    lock = RWLock()
    with lock.read():
        wrote, join = _queue_writer(lock)
        assert not _reader_gets_in(lock, 0.2)  # writer preference: ingest is not starved
    join()
    assert wrote.is_set()


def test_searches_get_past_a_writer_queued_behind_a_snapshot() -> None:
    lock = RWLock()
    with lock.read_long():
        wrote, join = _queue_writer(lock)
        assert _reader_gets_in(lock)  # it was held back for the whole snapshot
        assert not wrote.is_set()  # the write still waits for the snapshot
    join()
    assert wrote.is_set()
    assert _reader_gets_in(lock)


def test_a_snapshot_does_not_jump_a_waiting_writer() -> None:
    lock = RWLock()
    order: list[str] = []
    with lock.read():
        wrote, join = _queue_writer(lock)
        started = threading.Event()

        def snapshot() -> None:
            started.set()
            with lock.read_long():
                order.append("snapshot" if wrote.is_set() else "snapshot-first")

        thread = threading.Thread(target=snapshot, daemon=True)
        thread.start()
        started.wait()
    join()
    thread.join(5)
    assert order == ["snapshot"]
