"""The index lock: writers are preferred, except behind a long reader (a snapshot).

Both implementations: ``RWLock`` (pure Python) and ``NativeLock`` (kept by the native front,
where its searches take it too), wherever the front is built.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vector_search.index.rwlock import RWLock
from vector_search.native.front import DEFAULT_LIB, NativeFront, load_library
from vector_search.native.mirror import NativeLock


@pytest.fixture(params=["python", "native"])
def make_lock(request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    if request.param == "python":
        yield RWLock
        return
    if not DEFAULT_LIB.exists():
        pytest.skip("native front not built (needs gRPC C++: make system-deps)")
    front = NativeFront(load_library(DEFAULT_LIB))
    yield lambda: NativeLock(front.lib, front.lib.vsf_index_add(front.handle, b"t/lock"))
    front.close()


def _reader_gets_in(lock: Any, timeout: float = 0.5) -> bool:
    entered = threading.Event()

    def read() -> None:
        with lock.read():
            entered.set()

    threading.Thread(target=read, daemon=True).start()
    return entered.wait(timeout)


def _queue_writer(lock: Any) -> tuple[threading.Event, Callable[[], None]]:
    wrote = threading.Event()

    def write() -> None:
        with lock.write():
            wrote.set()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    if isinstance(lock, RWLock):
        while not lock._waiting_writers:  # queued behind the reader
            threading.Event().wait(0.001)
    else:  # the native lock does not show its queue: give the writer time to reach it
        time.sleep(0.2)
    return wrote, lambda: thread.join(5)


def test_a_waiting_writer_holds_new_searches_back(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    with lock.read():
        wrote, join = _queue_writer(lock)
        assert not _reader_gets_in(lock, 0.2)  # writer preference: ingest is not starved
    join()
    assert wrote.is_set()


def test_searches_get_past_a_writer_queued_behind_a_snapshot(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    with lock.read_long():
        wrote, join = _queue_writer(lock)
        assert _reader_gets_in(lock)  # it was held back for the whole snapshot
        assert not wrote.is_set()  # the write still waits for the snapshot
    join()
    assert wrote.is_set()
    assert _reader_gets_in(lock)


def test_a_snapshot_does_not_jump_a_waiting_writer(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
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
