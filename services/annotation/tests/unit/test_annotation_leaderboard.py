"""Leaderboard maths against hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from annotation.domain.leaderboard import (
    VoteRecord,
    agreement,
    bradley_terry,
    compute_leaderboard,
    pairwise_wins,
    wilson_interval,
)

AB = ("a", "b")


def v(chosen: str | None, models=AB, q="q", who="x", cat="shoes") -> VoteRecord:  # type: ignore[no-untyped-def]
    return VoteRecord(cat, q, who, tuple(models), chosen)


def test_wilson_matches_hand_computation() -> None:
    # 8 of 10, z = 1.96: centre = (0.8 + 0.19208) / 1.38416 = 0.716738,
    # half = 1.96 * sqrt(0.016 + 0.009604) / 1.38416 = 0.226617.
    low, high = wilson_interval(8, 10, z=1.96)
    assert low == pytest.approx(0.490, abs=1e-3)
    assert high == pytest.approx(0.943, abs=1e-3)


def test_wilson_edges_stay_inside_unit_interval() -> None:
    assert wilson_interval(0, 0) == (0.0, 0.0)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0.0 < high < 0.5
    low, high = wilson_interval(5, 5)
    assert 0.5 < low < 1.0 and high == pytest.approx(1.0)


def test_pairwise_wins_chosen_beats_every_other_row() -> None:
    votes = [v("a", ("a", "b", "c")), v(None, ("a", "b", "c")), v("c", ("a", "c"))]
    assert pairwise_wins(votes) == {("a", "b"): 1, ("a", "c"): 1, ("c", "a"): 1}


def test_bradley_terry_two_models_ratio_equals_win_ratio() -> None:
    # MLE for two players: p_a / p_b = wins_a / wins_b = 3.
    p = bradley_terry(["a", "b"], {("a", "b"): 3, ("b", "a"): 1}, prior=0)
    assert p["a"] == pytest.approx(0.75, abs=1e-6)
    assert p["b"] == pytest.approx(0.25, abs=1e-6)


def test_bradley_terry_three_models_transitive() -> None:
    # a beats b 2-1, b beats c 2-1, a beats c 2-1. Each row of the MLE equations:
    # W_i = sum_j n_ij p_i / (p_i + p_j); check that the fitted p satisfies them.
    wins = {
        ("a", "b"): 2,
        ("b", "a"): 1,
        ("b", "c"): 2,
        ("c", "b"): 1,
        ("a", "c"): 2,
        ("c", "a"): 1,
    }
    p = bradley_terry(["a", "b", "c"], wins, prior=0)
    assert p["a"] > p["b"] > p["c"]
    for i in "abc":
        expected = sum(
            (wins[(i, j)] + wins[(j, i)]) * p[i] / (p[i] + p[j]) for j in "abc" if j != i
        )
        assert expected == pytest.approx(sum(wins[(i, j)] for j in "abc" if j != i), rel=1e-6)
    assert sum(p.values()) == pytest.approx(1.0)


def test_bradley_terry_prior_keeps_a_never_winning_model_positive() -> None:
    # With prior 0.5: a has 3 + 0.5 wins, b has 0.5 out of 4 games -> ratio 7.
    p = bradley_terry(["a", "b"], {("a", "b"): 3})
    assert p["a"] / p["b"] == pytest.approx(7.0, rel=1e-6)


def test_agreement_hand_computed() -> None:
    votes = [
        v("a", q="q1", who="x"), v("a", q="q1", who="y"), v("b", q="q1", who="z"),
        v("a", q="q2", who="x"), v("a", q="q2", who="y"),
        v("b", q="q3", who="x"),  # judged once: not shared
    ]  # fmt: skip
    a = agreement(votes)
    assert a.shared_queries == 2
    assert a.unanimous_share == pytest.approx(0.5)
    # q1: 1 agreeing pair of 3; q2: 1 of 1 -> 2 / 4.
    assert a.pairwise_agreement == pytest.approx(0.5)
    # Fleiss: P_1 = 2/6, P_2 = 1, P_bar = 2/3; ratings a=4, b=1 -> P_e = 0.68.
    assert a.fleiss_kappa == pytest.approx((2 / 3 - 0.68) / 0.32)


def test_agreement_counts_none_as_a_category() -> None:
    a = agreement([v(None, q="q", who="x"), v(None, q="q", who="y")])
    assert a.pairwise_agreement == 1.0 and a.fleiss_kappa is None


def test_leaderboard_numbers_per_catalogue() -> None:
    votes = [
        v("a", ("a", "b", "c")), v("a", ("a", "b", "c")), v("b", ("a", "b", "c")),
        v(None, ("a", "b", "c")), v("c", ("a", "c"), cat="bags"),
    ]  # fmt: skip
    board = compute_leaderboard(votes, "shoes")
    assert (board.votes, board.none_votes, board.annotators) == (4, 1, 1)
    by = {m.model: m for m in board.models}
    assert [m.model for m in board.models] == ["a", "b", "c"]
    assert (by["a"].wins, by["a"].shown, by["a"].win_rate) == (2, 4, 0.5)
    assert (by["c"].wins, by["c"].rank) == (0, 3)
    assert by["a"].ci_low < 0.5 < by["a"].ci_high
    assert math.isclose(sum(m.bt_strength for m in board.models), 1.0)
    everything = compute_leaderboard(votes)
    assert everything.votes == 5
    assert {m.model: m.shown for m in everything.models}["c"] == 5


def test_empty_leaderboard() -> None:
    board = compute_leaderboard([])
    assert board.votes == 0 and board.models == [] and board.agreement.shared_queries == 0
