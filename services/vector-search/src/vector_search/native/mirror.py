"""An index as the native front sees it: its lock, FAISS object, hits and generation."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import islice
from typing import Any

import faiss
import numpy as np

from vector_search.index.engine import DEFAULT_EF_SEARCH
from vector_search.index.gil import CHUNK
from vector_search.index.mirror import IndexView
from vector_search.index.spec import IndexSpec
from vector_search.native.front import NativeFront

NATIVE_KINDS = ("Flat", "HNSW")


@contextmanager
def _held(acquire: Callable[[], None], release: Callable[[], None]) -> Iterator[None]:
    acquire()
    try:
        yield
    finally:
        release()


class NativeLock:
    """``rwlock.RWLock``'s rules, kept by the front so its searches take the same lock.
    ctypes releases the GIL while a call waits."""

    def __init__(self, lib: ctypes.CDLL, state: int) -> None:
        self._lib, self._state = lib, state

    def read(self) -> AbstractContextManager[None]:
        lib, state = self._lib, self._state
        return _held(lambda: lib.vsf_lock_read(state), lambda: lib.vsf_unlock_read(state, 0))

    def read_long(self) -> AbstractContextManager[None]:
        lib, state = self._lib, self._state
        return _held(lambda: lib.vsf_lock_read_long(state), lambda: lib.vsf_unlock_read(state, 1))

    def write(self) -> AbstractContextManager[None]:
        lib, state = self._lib, self._state
        return _held(lambda: lib.vsf_lock_write(state), lambda: lib.vsf_unlock_write(state))


MAX_RECORD = (1 << 24) - 1  # the front's span length field


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class HitEncoder:
    """Items as the front's hit records (front.cc, ``IndexState``): varint id length, id, then
    per metadata entry varint key id, varint value length, value; key names go to the front
    once, when first seen."""

    def __init__(self, register: Callable[[int, bytes], None]) -> None:
        self._register = register
        self._keys: dict[str, bytes] = {}  # key -> its id, varint-encoded
        self.oversize = False  # a record too long for the front was left out

    def _key(self, key: str) -> bytes:
        code = self._keys.get(key)
        if code is None:
            self._register(len(self._keys), key.encode())
            code = self._keys[key] = _varint(len(self._keys))
        return code

    def encode(
        self, ids: Sequence[str], metas: Sequence[dict[str, str]]
    ) -> tuple[bytes, np.ndarray]:
        """The records concatenated, and their offsets (one more than items)."""
        parts: list[bytes] = []
        offsets = np.zeros(len(ids) + 1, dtype="int64")
        for n, (ext, meta) in enumerate(zip(ids, metas, strict=True)):
            raw = ext.encode()
            record = [_varint(len(raw)), raw]
            for key, value in meta.items():
                vb = value.encode()
                record += (self._key(key), _varint(len(vb)), vb)
            part = b"".join(record)
            if len(part) > MAX_RECORD:  # the index goes to Python's path for good
                self.oversize, part = True, b""
            parts.append(part)
            offsets[n + 1] = offsets[n] + len(part)
        return b"".join(parts), offsets


class NativeMirror:
    """Registered with the front for one index; every call is made under its write lock."""

    def __init__(self, front: NativeFront, spec: IndexSpec) -> None:
        self._front, self._lib = front, front.lib
        self._spec = spec
        self._state = self._lib.vsf_index_add(front.handle, spec.name.encode())
        self.lock = NativeLock(self._lib, self._state)
        self._encoder = HitEncoder(
            lambda key_id, name: self._lib.vsf_index_key(self._state, key_id, name)
        )
        self._ef = spec.int_param("ef_search", DEFAULT_EF_SEARCH)
        self._params: Any = None  # what Engine.search passes for k <= efSearch (HNSW)
        self._keep: tuple[Any, ...] = ()  # its selectors: FAISS holds raw pointers to them
        self._params_for: tuple[int, int] | None = None  # (engine base, tombstones) it is for

    def added(
        self, labels: np.ndarray, ids: Sequence[str], metas: Sequence[dict[str, str]]
    ) -> None:
        blob, offsets = self._encoder.encode(ids, metas)
        labels = np.ascontiguousarray(labels, dtype="int64")
        self._lib.vsf_index_put(
            self._state, len(labels), labels.ctypes.data, blob, offsets.ctypes.data
        )

    def removed(self, labels: Sequence[int]) -> None:
        arr = np.asarray(labels, dtype="int64")
        self._lib.vsf_index_clear(self._state, len(arr), arr.ctypes.data)

    def rebuild(self, rows: Iterator[tuple[int, str, dict[str, str]]]) -> None:
        while chunk := list(islice(rows, CHUNK)):
            labels, ids, metas = zip(*chunk, strict=True)
            self.added(np.asarray(labels, dtype="int64"), ids, metas)

    def refresh(self, coll: IndexView) -> None:
        engine, spec = coll.engine, self._spec
        native = (
            spec.kind in NATIVE_KINDS
            and engine.trained
            and engine.transform is None
            and not engine.use_gpu
            and coll.refine == 1
            and not self._encoder.oversize
            and type(engine.base).__name__ == "IndexIDMap"
        )
        ptr = int(engine.base.this) if native else None
        params = self._search_params(engine) if native and spec.kind == "HNSW" else None
        max_k = self._ef if spec.kind == "HNSW" else 1 << 30
        self._lib.vsf_index_set(
            self._state, ptr, params, spec.dimension, spec.metric == "IP", max_k,
            coll.generation, coll.count,
        )  # fmt: skip

    def _search_params(self, engine: Any) -> int:
        """``SearchParametersHNSW`` as ``Engine.search`` builds them: efSearch, and the
        tombstones (deleted or overwritten items FAISS still holds) excluded by a selector.
        Tombstones only grow until compaction replaces the base, so (base, count) says
        whether the last one still holds; rebuilding is O(tombstones), once per such write."""
        key = (id(engine.base), len(engine.tombstones))
        if key != self._params_for:
            sel, keep = engine.selector(None, engine.tombstones)
            params = faiss.SearchParametersHNSW(sel=sel)
            params.efSearch = self._ef
            self._params, self._keep, self._params_for = params, (sel, *keep), key
        return int(self._params.this)

    def detach(self) -> None:
        self._lib.vsf_index_remove(self._front.handle, self._state)

    def nbytes(self) -> int:
        return int(self._lib.vsf_index_bytes(self._state))
