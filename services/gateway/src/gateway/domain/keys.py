"""Cache keys: everything that can change an answer is in the key, so nothing goes stale."""

from __future__ import annotations

import hashlib
import json

from gateway.domain.types import Filters


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def search_key(
    *,
    kind: str,
    subject: str,
    index: str,
    model_version: str | None,
    generation: tuple[int, ...],
    k: int,
    filters: Filters,
) -> str:
    """``kind`` is ``img`` (subject = image hash) or ``item`` (subject = item id)."""
    doc = {
        "kind": kind,
        "subject": subject,
        "index": index,
        "model_version": model_version,
        "generation": list(generation),
        "k": k,
        "filters": filters,
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return f"search:{kind}:{hashlib.sha256(blob).hexdigest()}"
