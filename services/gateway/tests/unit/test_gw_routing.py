"""Routing uploads without a catalogue: a k-NN vote across catalogues, not the best top-1."""

from __future__ import annotations

import pytest

from gateway.domain.routing import vote
from gateway.domain.types import Hit, SearchOutcome


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
