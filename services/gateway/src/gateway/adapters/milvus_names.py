"""Milvus collection names and filter expressions, kept pure so they are unit-tested alone.

Collection names allow only ``[A-Za-z0-9_]``, so an index name is hex-escaped: every UTF-8
byte outside ``[A-Za-z0-9]`` (``_`` included) becomes ``_xx`` (two lowercase hex digits).
``shoes/infogan`` -> ``<prefix>shoes_2finfogan``; the mapping is reversible and injective.

Filter values come from users. This Milvus Lite parses no expression templates
(``filter_params``), and pymilvus' own ``get(ids=...)`` quotes ids without escaping, so
every string literal here goes through :func:`string_literal`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.domain.types import Filters

MAX_COLLECTION_NAME = 255  # Milvus' limit
PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset("0123456789abcdef")
# The escapes both Milvus (its ANTLR grammar) and Milvus Lite (its tokenizer) accept.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def collection_name(index: str, prefix: str) -> str:
    """The collection holding ``index``; ValueError when the result is too long for Milvus."""
    out = [prefix]
    for byte in index.encode("utf-8"):
        out.append(chr(byte) if byte in _PLAIN else f"_{byte:02x}")
    name = "".join(out)
    if not index or len(name) > MAX_COLLECTION_NAME:
        raise ValueError(f"index name {index!r} does not fit a Milvus collection name")
    return name


def index_of_collection(name: str, prefix: str) -> str | None:
    """Inverse of :func:`collection_name`; None for collections that are not our indexes
    (other prefixes, the generations collection, anything not produced by the encoder)."""
    if not name.startswith(prefix) or len(name) == len(prefix):
        return None
    body, raw, i = name[len(prefix) :], bytearray(), 0
    while i < len(body):
        if body[i] != "_":
            raw.append(ord(body[i]))
            i += 1
            continue
        pair = body[i + 1 : i + 3]
        if len(pair) != 2 or not set(pair) <= _HEX:
            return None
        raw.append(int(pair, 16))
        i += 3
    try:
        index = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return index if collection_name(index, prefix) == name else None


def string_literal(value: str) -> str:
    """A double-quoted Milvus string literal that evaluates to exactly ``value``."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def filter_expr(filters: Filters, field: str = "meta") -> str:
    """``{"class": ["heels", "flats"]}`` -> ``(meta["class"] == "heels" or ...)``, keys ANDed.

    ``in`` is not used: Milvus Lite accepts it on plain fields only, not on JSON paths.
    A key missing from an item's metadata matches nothing, as in the FAISS service. A key
    with no values matches nothing either; callers short-circuit it (see ``matches_nothing``).
    """
    if matches_nothing(filters):
        raise ValueError("a filter key without values matches nothing")
    clauses = []
    for key, values in sorted(filters.items()):
        path = f"{field}[{string_literal(key)}]"
        clauses.append("(" + " or ".join(f"{path} == {string_literal(v)}" for v in values) + ")")
    return " and ".join(clauses)


def matches_nothing(filters: Filters) -> bool:
    return any(not values for values in filters.values())


def ids_expr(ids: Iterable[str], field: str = "id") -> str:
    return f"{field} in [{', '.join(string_literal(i) for i in ids)}]"


def search_expr(filters: Filters, exclude_id: str | None) -> str:
    parts = [filter_expr(filters)] if filters else []
    if exclude_id is not None:
        parts.append(f"id != {string_literal(exclude_id)}")
    return " and ".join(parts)
