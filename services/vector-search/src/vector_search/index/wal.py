"""Write-ahead log: length-prefixed, CRC-checked records in segments ``wal-<first gen>.log``.

Replay stops at the first torn or corrupt record; the tail is truncated so appends stay readable.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIQ")  # payload length, crc32(gen + payload), generation
UPSERT, DELETE = 1, 2


@dataclass
class Record:
    gen: int
    kind: int
    ids: list[str]
    metas: list[dict[str, str]]
    vectors: np.ndarray | None


def encode(
    kind: int, ids: list[str], metas: list[dict[str, str]], vectors: np.ndarray | None
) -> bytes:
    head = json.dumps({"ids": ids, "metas": metas}, separators=(",", ":")).encode()
    body = vectors.astype("<f4", copy=False).tobytes() if vectors is not None else b""
    return bytes([kind]) + struct.pack("<I", len(head)) + head + body


def decode(gen: int, payload: bytes, dim: int) -> Record:
    kind = payload[0]
    (hlen,) = struct.unpack_from("<I", payload, 1)
    head = json.loads(payload[5 : 5 + hlen])
    vectors = None
    if kind == UPSERT:
        vectors = np.frombuffer(payload[5 + hlen :], dtype="<f4").reshape(len(head["ids"]), dim)
    return Record(gen, kind, head["ids"], head["metas"], vectors)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_path(directory: Path, first_gen: int) -> Path:
    return directory / f"wal-{first_gen:020d}.log"


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("wal-*.log"))


class WriteAheadLog:
    """Append-only log for one index; ``fsync`` is always, batch or never."""

    def __init__(self, directory: Path, fsync: str = "always") -> None:
        self.directory = directory
        self.fsync = fsync
        self._file: BinaryIO | None = None
        self._dirty = False
        self._lock = threading.Lock()

    def replay(self, dim: int) -> Iterator[Record]:
        """Yield every intact record in order; truncate at the first bad one."""
        segs = segments(self.directory)
        for i, seg in enumerate(segs):
            good = 0
            with seg.open("rb") as f:
                data = f.read()
            while good + _HEADER.size <= len(data):
                length, crc, gen = _HEADER.unpack_from(data, good)
                start = good + _HEADER.size
                payload = data[start : start + length]
                if len(payload) < length or zlib.crc32(struct.pack("<Q", gen) + payload) != crc:
                    break
                yield decode(gen, payload, dim)
                good = start + length
            if good < len(data):
                log.warning("truncating torn WAL tail", extra={"segment": seg.name, "at": good})
                with seg.open("r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
                for later in segs[i + 1 :]:  # nothing after a corrupt record can be trusted
                    later.rename(later.with_suffix(".corrupt"))
                return

    def open(self, next_gen: int) -> None:
        """Append to the newest segment (or start one at ``next_gen``)."""
        segs = segments(self.directory)
        path = segs[-1] if segs else segment_path(self.directory, next_gen)
        self._file = path.open("ab")
        if not segs:
            fsync_dir(self.directory)

    def append(self, gen: int, payload: bytes) -> None:
        record = _HEADER.pack(len(payload), zlib.crc32(struct.pack("<Q", gen) + payload), gen)
        with self._lock:
            f = self._file
            assert f is not None, "WAL not open"
            f.write(record + payload)
            f.flush()
            if self.fsync == "always":
                os.fsync(f.fileno())
            else:
                self._dirty = True

    def sync(self) -> None:
        """Flush pending appends to disk (the batch policy's timer calls this)."""
        with self._lock:
            if self._dirty and self._file is not None and self.fsync == "batch":
                os.fsync(self._file.fileno())
                self._dirty = False

    def rotate(self, next_gen: int) -> Path:
        """Start a new segment whose records all have gen >= ``next_gen``; return it."""
        with self._lock:
            self._close_locked()
            path = segment_path(self.directory, next_gen)
            self._file = path.open("ab")
            fsync_dir(self.directory)
            return path

    def drop_before(self, keep: Path) -> None:
        """Delete segments older than ``keep`` (a snapshot now covers them)."""
        for seg in segments(self.directory):
            if seg.name < keep.name:
                seg.unlink(missing_ok=True)

    def _close_locked(self) -> None:
        if self._file is not None:
            f = self._file
            f.flush()
            if self.fsync != "never":
                os.fsync(f.fileno())
            f.close()
            self._file = None

    def close(self) -> None:
        with self._lock:
            self._close_locked()
