"""Leaderboard maths over stored votes: win-rates, Wilson intervals, Bradley-Terry, agreement.

Pure functions over plain records so they can be checked against hand-computed numbers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

NONE_CHOICE = "(none)"
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class VoteRecord:
    """One vote: which models were shown (display order) and which one won (None = none)."""

    catalogue: str
    query_id: str
    annotator: str
    models: tuple[str, ...]
    chosen: str | None


@dataclass(frozen=True)
class ModelStanding:
    model: str
    shown: int
    wins: int
    win_rate: float
    ci_low: float
    ci_high: float
    bt_strength: float
    rank: int


@dataclass(frozen=True)
class Agreement:
    """How often annotators who saw the same query picked the same model (or both none)."""

    shared_queries: int
    unanimous_share: float | None
    pairwise_agreement: float | None
    fleiss_kappa: float | None


@dataclass(frozen=True)
class Leaderboard:
    catalogue: str | None
    votes: int
    none_votes: int
    annotators: int
    models: list[ModelStanding] = field(default_factory=list)
    agreement: Agreement = Agreement(0, None, None, None)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval; behaves at 0 and n successes where the normal one does not."""
    if trials <= 0:
        return (0.0, 0.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def pairwise_wins(votes: Iterable[VoteRecord]) -> dict[tuple[str, str], float]:
    """(winner, loser) -> count: the chosen row beats every other row shown with it."""
    wins: dict[tuple[str, str], float] = defaultdict(float)
    for vote in votes:
        if vote.chosen is None:
            continue
        for other in set(vote.models):
            if other != vote.chosen:
                wins[(vote.chosen, other)] += 1.0
    return dict(wins)


def bradley_terry(
    models: Sequence[str],
    wins: dict[tuple[str, str], float],
    prior: float = 0.5,
    max_iter: int = 10_000,
    tol: float = 1e-10,
) -> dict[str, float]:
    """Bradley-Terry strengths by Hunter's MM algorithm, normalised to sum to 1.

    ``prior`` adds that many virtual wins each way to every compared pair, so a model
    that never won keeps a small positive strength and the estimate always exists.
    """
    names = sorted(set(models))
    if not names:
        return {}
    w = {(a, b): wins.get((a, b), 0.0) for a in names for b in names if a != b}
    n = {pair: w[pair] + w[(pair[1], pair[0])] for pair in w}
    if prior > 0:
        for pair in w:
            if n[pair] > 0:
                w[pair] += prior
                n[pair] += 2 * prior
    total_wins = {a: sum(w[(a, b)] for b in names if b != a) for a in names}
    p = {a: 1.0 / len(names) for a in names}
    for _ in range(max_iter):
        new: dict[str, float] = {}
        for a in names:
            denom = sum(n[(a, b)] / (p[a] + p[b]) for b in names if b != a and n[(a, b)] > 0)
            new[a] = total_wins[a] / denom if denom > 0 else p[a]
        norm = sum(new.values()) or 1.0
        new = {a: v / norm for a, v in new.items()}
        delta = max(abs(new[a] - p[a]) for a in names)
        p = new
        if delta < tol:
            break
    return p


def agreement(votes: Iterable[VoteRecord]) -> Agreement:
    """Agreement on queries judged by two or more annotators (one vote per annotator kept).

    Pairwise agreement is the share of annotator pairs that made the same pick; Fleiss'
    kappa uses the picks (models and "none") as categories, with varying raters per query.
    """
    by_query: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for vote in votes:
        by_query[(vote.catalogue, vote.query_id)][vote.annotator] = vote.chosen or NONE_CHOICE
    shared = [list(picks.values()) for picks in by_query.values() if len(picks) >= 2]
    if not shared:
        return Agreement(0, None, None, None)
    unanimous = sum(1 for picks in shared if len(set(picks)) == 1) / len(shared)
    agree_pairs = total_pairs = 0
    per_item: list[float] = []
    category_totals: Counter[str] = Counter()
    for picks in shared:
        counts = Counter(picks)
        raters = len(picks)
        same = sum(c * (c - 1) for c in counts.values())
        agree_pairs += same // 2
        total_pairs += raters * (raters - 1) // 2
        per_item.append(same / (raters * (raters - 1)))
        category_totals.update(counts)
    ratings = sum(category_totals.values())
    p_bar = sum(per_item) / len(per_item)
    p_e = sum((c / ratings) ** 2 for c in category_totals.values())
    kappa = None if math.isclose(p_e, 1.0) else (p_bar - p_e) / (1 - p_e)
    return Agreement(len(shared), unanimous, agree_pairs / total_pairs, kappa)


def compute_leaderboard(
    votes: Sequence[VoteRecord], catalogue: str | None = None, prior: float = 0.5
) -> Leaderboard:
    """The whole leaderboard for one catalogue (or every catalogue when ``catalogue`` is None)."""
    selected = [v for v in votes if catalogue is None or v.catalogue == catalogue]
    shown: Counter[str] = Counter()
    won: Counter[str] = Counter()
    for vote in selected:
        shown.update(set(vote.models))
        if vote.chosen is not None:
            won[vote.chosen] += 1
    strengths = bradley_terry(list(shown), pairwise_wins(selected), prior=prior)
    order = sorted(shown, key=lambda m: (-strengths.get(m, 0.0), -won[m] / shown[m], m))
    standings = []
    for rank, model in enumerate(order, start=1):
        low, high = wilson_interval(won[model], shown[model])
        standings.append(
            ModelStanding(
                model=model,
                shown=shown[model],
                wins=won[model],
                win_rate=won[model] / shown[model],
                ci_low=low,
                ci_high=high,
                bt_strength=strengths.get(model, 0.0),
                rank=rank,
            )
        )
    return Leaderboard(
        catalogue=catalogue,
        votes=len(selected),
        none_votes=sum(1 for v in selected if v.chosen is None),
        annotators=len({v.annotator for v in selected}),
        models=standings,
        agreement=agreement(selected),
    )
