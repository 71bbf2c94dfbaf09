"""Long Python-level work in chunks that hand the GIL over between them.

One C call over a million Python objects (``list(d)``, ``json.dumps``) holds the GIL for
tens of milliseconds, and every search thread and the event loop of the process wait for
it. Chunks of ``CHUNK`` items take about a millisecond each, and ``time.sleep(0)`` after
each lets a waiting thread in at once instead of at the next 5 ms switch interval.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

import numpy as np

T = TypeVar("T")
CHUNK = 10_000


def chunks(seq: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(seq), CHUNK):
        yield seq[start : start + CHUNK]
        time.sleep(0)


def copy_list(items: Iterable[T]) -> list[T]:
    """``list(items)``, a chunk at a time (``items`` must not change meanwhile)."""
    out: list[T] = []
    it = iter(items)
    while part := list(islice(it, CHUNK)):
        out.extend(part)
        time.sleep(0)
    return out


def int_array(seq: Sequence[int], dtype: str) -> np.ndarray:
    """``np.array(seq, dtype)``, a chunk at a time."""
    out = np.empty(len(seq), dtype=dtype)
    for i, part in enumerate(chunks(seq)):
        out[i * CHUNK : i * CHUNK + len(part)] = part
    return out
