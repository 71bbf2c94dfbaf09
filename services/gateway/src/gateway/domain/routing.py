"""Which catalogue an upload without one belongs to: a k-nearest-neighbour vote.

The best single score across catalogues fails off-catalogue (a shoe photo from another shop sits
closer to some handbag than to any indexed shoe: 28 of 30 went to handbags); the ``vote_k`` best
hits across every catalogue's index vote instead, ties going to the higher summed score. It needs
no fitting, so it holds as soon as an index is filled. Measured in docs/evaluation.md (routing).

The vote may be taken in another model's indexes than the one that ranks the results
(``GATEWAY_ROUTING_MODEL``): the model best at telling catalogues apart routes, the requested
model ranks within the chosen catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.domain.types import SearchOutcome

VOTE_K = 10


@dataclass(frozen=True)
class Router:
    """A routing model as a search sees it: its version and index generation per catalogue."""

    model: str
    version: str
    generations: Mapping[str, tuple[int, ...]]

    @property
    def key(self) -> str:
        """Part of a cache key: a re-indexed or re-versioned router may route elsewhere."""
        gens = ",".join(f"{c}:{'.'.join(map(str, g))}" for c, g in sorted(self.generations.items()))
        return f";route={self.model}@{self.version}[{gens}]"


def vote(outcomes: Mapping[str, SearchOutcome], vote_k: int = VOTE_K) -> str:
    """The catalogue with most hits among the ``vote_k`` best across all ``outcomes``."""
    if not outcomes:
        raise ValueError("no catalogue to route to")
    merged = sorted(
        ((hit.score, name) for name, outcome in outcomes.items() for hit in outcome.hits),
        reverse=True,
    )[:vote_k]
    counts = {name: 0 for name in outcomes}
    sums = {name: 0.0 for name in outcomes}
    for score, name in merged:
        counts[name] += 1
        sums[name] += score
    return max(outcomes, key=lambda name: (counts[name], sums[name], name))
