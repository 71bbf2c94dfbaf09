"""Retrieval metrics per query: exact inner-product search within each catalogue index.

Every function returns per-query arrays so that overall, per-class and bootstrap figures all come
from the same numbers. A neighbour is relevant when it has the query's class; the query itself is
never a neighbour; optionally neighbours sharing the query's product title are dropped too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KS = (1, 5, 10)
MAP_K = 10
TITLE_MARGIN = 64  # extra depth searched so that dropped same-title neighbours can be replaced


@dataclass
class QueryScores:
    """Per-query metric values (aligned with ``queries``)."""

    queries: np.ndarray
    values: dict[str, np.ndarray]  # "p@1", "p@5", "p@10", "map@10"


def _scores(relevant: np.ndarray, n_relevant: int) -> dict[str, float]:
    """``relevant``: booleans of the ranked neighbours (query already removed)."""
    out = {f"p@{k}": float(np.mean(relevant[:k])) if len(relevant) >= 1 else 0.0 for k in KS}
    top = relevant[:MAP_K].astype(np.float64)
    if n_relevant == 0 or not top.any():
        out[f"map@{MAP_K}"] = 0.0
    else:
        precisions = np.cumsum(top) / np.arange(1, len(top) + 1)
        out[f"map@{MAP_K}"] = float((precisions * top).sum() / min(n_relevant, MAP_K))
    return out


def search(vectors: np.ndarray, pool: np.ndarray, queries: np.ndarray, depth: int) -> np.ndarray:
    """Exact inner-product neighbours of ``queries`` among ``pool`` (global row ids)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors[pool], dtype=np.float32))
    _, ids = index.search(
        np.ascontiguousarray(vectors[queries], dtype=np.float32), min(depth, len(pool))
    )
    return np.where(ids >= 0, pool[np.clip(ids, 0, None)], -1)


def query_scores(
    vectors: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    titles: np.ndarray | None = None,
    pool: np.ndarray | None = None,
) -> QueryScores:
    """Metrics per query. ``groups`` (e.g. category) gives one index per group (a query searches
    only its own group's items); ``pool`` restricts the indexed items (default: all);
    ``titles`` drops neighbours with the query's title."""
    n = len(labels)
    pool = np.arange(n) if pool is None else np.asarray(pool)
    groups = np.zeros(n, dtype=object) if groups is None else groups
    values = {f"p@{k}": np.zeros(len(queries)) for k in KS}
    values[f"map@{MAP_K}"] = np.zeros(len(queries))
    depth = max(max(KS), MAP_K) + 1 + (TITLE_MARGIN if titles is not None else 0)
    position = {int(q): i for i, q in enumerate(queries)}
    for group in sorted(set(groups[queries].tolist()), key=str):
        members = pool[groups[pool] == group]
        group_queries = queries[groups[queries] == group]
        ids = search(vectors, members, group_queries, depth)
        for q, row in zip(group_queries, ids, strict=True):
            keep = (row >= 0) & (row != q)
            if titles is not None:
                keep &= titles[np.clip(row, 0, None)] != titles[q]
            neighbours = row[keep]
            candidates = members[members != q]
            if titles is not None:
                candidates = candidates[titles[candidates] != titles[q]]
            n_relevant = int(np.sum(labels[candidates] == labels[q]))
            scores = _scores(labels[neighbours] == labels[q], n_relevant)
            for key, value in scores.items():
                values[key][position[int(q)]] = value
    return QueryScores(np.asarray(queries), values)


def bootstrap_ci(
    values: np.ndarray, *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over queries (fixed seed: deterministic)."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = np.asarray(values)[picks].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def summarise(
    scores: QueryScores,
    labels: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, object]:
    """Means, bootstrap CIs and per-class p@5 / mAP@10 over the (masked) queries."""
    mask = np.ones(len(scores.queries), bool) if mask is None else mask
    out: dict[str, object] = {"queries": int(mask.sum())}
    for key, vals in scores.values.items():
        out[key] = float(vals[mask].mean()) if mask.any() else float("nan")
        out[f"{key}_ci95"] = list(bootstrap_ci(vals[mask], resamples=resamples, seed=seed))
    per_class: dict[str, dict[str, float]] = {}
    q_labels = labels[scores.queries]
    for label in sorted(set(q_labels[mask].tolist())):
        sel = mask & (q_labels == label)
        per_class[str(label)] = {
            "queries": int(sel.sum()),
            "p@5": float(scores.values["p@5"][sel].mean()),
            f"map@{MAP_K}": float(scores.values[f"map@{MAP_K}"][sel].mean()),
        }
    out["per_class"] = per_class
    return out


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mean of a - b over the same queries with a paired bootstrap 95 % CI."""
    diff = np.asarray(a) - np.asarray(b)
    low, high = bootstrap_ci(diff, resamples=resamples, seed=seed)
    return {"mean": float(diff.mean()), "ci95_low": low, "ci95_high": high}
