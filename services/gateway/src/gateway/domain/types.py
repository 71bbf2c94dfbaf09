"""Value types passed between the domain, the adapters and the transports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
class SearchOutcome:
    """Merged hits of every shard; ``generation`` has one entry per shard."""

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
    return f"{catalogue}/{model}"


def normalise_filters(raw: object) -> Filters:
    """``{"class": "heels"}`` or ``{"class": ["heels", "flats"]}`` -> sorted lists of strings."""
    from gateway.errors import InvalidInput

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("filters must be an object of key -> value or list of values")
    out: Filters = {}
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        if not isinstance(key, str) or not key or len(values) > 50:
            raise InvalidInput("bad filter key or too many values")
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidInput(f"filter {key!r} values must be scalars")
        out[key] = sorted(str(v) for v in values)
    return dict(sorted(out.items()))
