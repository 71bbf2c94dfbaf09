"""Routing uploads without a catalogue: a k-NN vote across catalogues, not the best top-1;
optionally in a routing model's indexes."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.adapters.cache import LruCache
from gateway.domain.recommend import Recommender
from gateway.domain.routing import vote
from gateway.domain.timing import Timings
from gateway.domain.types import Hit, RecommendQuery, SearchOutcome, StoredItem

from .conftest import FakeEmbedder, FakeStore, png


def outcome(*scores: float) -> SearchOutcome:
    return SearchOutcome([Hit(str(i), s, 1.0 - s) for i, s in enumerate(scores)], (1,))


def test_many_close_hits_beat_one_lucky_best_match() -> None:
    # The case top-1 routing got wrong: one handbag happens to score highest, but most of the
    # nearest neighbours are shoes.
    outcomes = {
        "handbags": outcome(0.91, 0.60, 0.58, 0.55),
        "shoes": outcome(0.90, 0.89, 0.88, 0.87, 0.86, 0.85),
    }
    assert vote(outcomes, vote_k=5) == "shoes"


def test_ties_go_to_the_higher_summed_score() -> None:
    outcomes = {"a": outcome(0.9, 0.1), "b": outcome(0.8, 0.7)}
    assert vote(outcomes, vote_k=4) == "b"


def test_an_empty_index_loses_and_no_catalogue_is_an_error() -> None:
    assert vote({"empty": outcome(), "shoes": outcome(0.2)}) == "shoes"
    with pytest.raises(ValueError):
        vote({})


# --- a routing model: one model's vote picks the catalogue, the requested model ranks ---------


SHOE, BAG = [1.0] + [0.0] * 7, [0.0, 1.0] + [0.0] * 6


class TwoSpaces(FakeEmbedder):
    """``ranker`` puts the upload next to the handbags; ``router`` next to the shoes."""

    async def embed(self, model: str, images):  # type: ignore[no-untyped-def]
        self.calls += 1
        near = SHOE if model == "router" else BAG
        return [list(np.add(near, 0.01)) for _ in images]


def two_catalogue_store(models: tuple[str, ...] = ("ranker", "router")) -> FakeStore:
    store = FakeStore()
    for model in models:
        for catalogue, vector in (("shoes", SHOE), ("handbags", BAG)):
            name = f"{catalogue}/{model}"
            store.indexes[name] = {
                f"{catalogue}{i}": StoredItem(f"{catalogue}{i}", {"category": catalogue}, vector)
                for i in range(3)
            }
            store.generations[name] = 1
    return store


def recommender(store: FakeStore, routing_model: str, embedder: FakeEmbedder) -> Recommender:
    return Recommender(
        embedder=embedder,
        store=store,
        cache=LruCache(64),
        catalogues=["shoes", "handbags"],
        default_model="ranker",
        routing_model=routing_model,
    )


async def search(rec: Recommender) -> str:
    result = await rec.search_image(
        png(1), RecommendQuery(catalogue=None, model=None, k=2), Timings()
    )
    return result.catalogue


async def test_the_routing_model_picks_the_catalogue_and_the_requested_model_ranks() -> None:
    store = two_catalogue_store()
    embedder = TwoSpaces()
    assert await search(recommender(store, "", embedder)) == "handbags"  # the ranker's own vote
    routed = recommender(store, "router", embedder)
    result = await routed.search_image(
        png(1), RecommendQuery(catalogue=None, model=None, k=2), Timings()
    )
    assert result.catalogue == "shoes" and result.model == "ranker"
    assert result.index == "shoes/ranker" and {h.id for h in result.items} <= {
        "shoes0",
        "shoes1",
        "shoes2",
    }


async def test_a_routing_model_without_indexes_falls_back_to_the_requested_models_vote() -> None:
    store = two_catalogue_store(models=("ranker",))
    assert await search(recommender(store, "router", TwoSpaces())) == "handbags"
