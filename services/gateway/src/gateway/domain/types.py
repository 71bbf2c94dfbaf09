"""Value types passed between the domain, the adapters and the transports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fashionrec_common import index_names as names

Filters = dict[str, list[str]]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    distance: float
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredItem:
    id: str
    metadata: dict[str, str]
    vector: list[float] | None = None


@dataclass(frozen=True)
class RecommendQuery:
    """What a search by image or by item asks for, whichever transport it came in by."""

    catalogue: str | None  # None: every catalogue (by image) or the item's own (by item)
    model: str | None  # None: the default model
    k: int
    filters: Filters = field(default_factory=dict)


@dataclass(frozen=True)
class VectorQuery:
    """A nearest-neighbour search in one index: the ``k`` best items matching ``filters``,
    ``exclude_id`` left out (the query item itself, for more-like-this)."""

    vector: Sequence[float]
    k: int
    filters: Filters = field(default_factory=dict)
    exclude_id: str | None = None


@dataclass(frozen=True)
class SearchOutcome:
    """Hits, best first, and the index generation they were read at (a tuple: cache keys
    compare it whole)."""

    hits: list[Hit]
    generation: tuple[int, ...]
    partial: bool = False


@dataclass(frozen=True)
class IndexSummary:
    name: str
    dimension: int
    count: int
    generation: int

    @property
    def catalogue(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def model(self) -> str:
        return self.name.split("/", 1)[-1]


@dataclass
class Recommendations:
    """What a search or similar-by-id returns, with the provenance of the answer."""

    items: list[Hit]
    catalogue: str
    model: str
    model_version: str | None
    index: str
    index_generation: int
    cached: bool = False
    partial: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [vars(h) | {"metadata": dict(h.metadata)} for h in self.items],
            "catalogue": self.catalogue,
            "model": self.model,
            "model_version": self.model_version,
            "index": self.index,
            "index_generation": self.index_generation,
            "partial": self.partial,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Recommendations:
        return cls(
            items=[Hit(**h) for h in doc["items"]],
            catalogue=doc["catalogue"],
            model=doc["model"],
            model_version=doc["model_version"],
            index=doc["index"],
            index_generation=int(doc["index_generation"]),
            partial=bool(doc.get("partial", False)),
        )


def index_name(catalogue: str, model: str) -> str:
    """``<catalogue>/<model>``: the shared contract (``fashionrec_common.index_names``)."""
    return names.index_name(catalogue, model)


MAX_FILTER_KEYS = 32
MAX_FILTER_VALUES = 50
MAX_FILTERS_CHARS = 4096
# An object of key -> value or list of values: two levels of brackets at most.
MAX_FILTER_DEPTH = 2


def parse_filters(text: str | None) -> Filters:
    """Filters sent as JSON text (multipart field, query parameter). Size and nesting are
    checked on the raw text before ``json.loads``, which recurses: 3,000 nested brackets
    exhaust the stack (RecursionError, a 500) before any type check could run."""
    from gateway.errors import InvalidInput

    if not text:
        return {}
    if len(text) > MAX_FILTERS_CHARS:
        raise InvalidInput(f"filters are longer than {MAX_FILTERS_CHARS} characters")
    if _nesting_exceeds(text, MAX_FILTER_DEPTH):
        raise InvalidInput(f"filters nest deeper than {MAX_FILTER_DEPTH} levels")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidInput("filters must be a JSON object") from exc
    return normalise_filters(raw)


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether JSON brackets (outside strings) nest deeper than ``limit``; no recursion."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def normalise_filters(raw: object) -> Filters:
    """``{"class": "heels"}`` or ``{"class": ["heels", "flats"]}`` -> sorted lists of strings.
    Values must be scalars, so nothing nested gets past this (gRPC filters are flat anyway)."""
    from gateway.errors import InvalidInput

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("filters must be an object of key -> value or list of values")
    if len(raw) > MAX_FILTER_KEYS:
        raise InvalidInput(f"at most {MAX_FILTER_KEYS} filter keys")
    out: Filters = {}
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        if not isinstance(key, str) or not key or len(values) > MAX_FILTER_VALUES:
            raise InvalidInput("bad filter key or too many values")
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidInput(f"filter {key!r} values must be scalars")
        out[key] = sorted(str(v) for v in values)
    return dict(sorted(out.items()))
