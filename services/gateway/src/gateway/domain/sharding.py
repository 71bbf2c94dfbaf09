"""Which shard owns an item, and how per-shard top-k lists merge into one."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable

from gateway.domain.types import Hit


def shard_for(item_id: str, shards: int) -> int:
    """Stable across processes and restarts: first 8 bytes of sha256(id), mod N."""
    digest = hashlib.sha256(item_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def merge_top_k(per_shard: Iterable[list[Hit]], k: int, exclude_id: str | None = None) -> list[Hit]:
    """Best ``k`` by score over all shards; ties broken by id so the order is deterministic."""
    hits = (h for hits in per_shard for h in hits if h.id != exclude_id)
    return heapq.nsmallest(k, hits, key=lambda h: (-h.score, h.id))
