"""Catalogue routing: which catalogue (shoes, handbags, ...) an upload without one belongs to.

Three rules, all on the vectors the shop already indexed (nothing is fitted on the queries):

- ``top1``: the catalogue whose index returns the single best score (what the gateway did; it
  fails off-catalogue: photos from another shop sit closer to the wrong catalogue's best match).
- ``knn``: the ``k`` best hits across every catalogue's index vote; ties go to the higher summed
  score. Needs no fitting, so it works on any index as soon as it is filled.
- ``centroid``: the nearest mean vector of each catalogue (fitted at ingest, label-free: the
  catalogue a photo was indexed into is shop metadata).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RULES = ("top1", "knn", "centroid")
VOTE_K = 10
# The gateway's GATEWAY_ROUTING_MODEL as `make demo` sets it when its weights are here: the
# strongest ImageNet CNN we have, chosen beforehand (not on any evaluated catalogue).
SERVED_ROUTER = "efficientnet_lite0"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_vote(scores: np.ndarray, groups: np.ndarray, names: Sequence[str]) -> list[str]:
    """``scores``/``groups``: [Q, k] best hits across all catalogues, best first."""
    out = []
    for row_scores, row_groups in zip(scores, groups, strict=True):
        best = max(
            names,
            key=lambda n: (int(np.sum(row_groups == n)), float(row_scores[row_groups == n].sum())),
        )
        out.append(best)
    return out


def route(
    queries: np.ndarray,
    index: np.ndarray,
    index_groups: np.ndarray,
    rule: str,
    k: int = VOTE_K,
) -> np.ndarray:
    """The catalogue chosen for each query vector under ``rule``."""
    import faiss

    names = sorted(set(index_groups.tolist()), key=str)
    q = np.ascontiguousarray(_unit(queries), dtype=np.float32)
    if rule == "centroid":
        centroids = np.stack([_unit(index[index_groups == n]).mean(axis=0) for n in names])
        return np.asarray(names, dtype=object)[np.argmax(q @ _unit(centroids).T, axis=1)]
    flat = faiss.IndexFlatIP(index.shape[1])
    flat.add(np.ascontiguousarray(_unit(index), dtype=np.float32))
    scores, ids = flat.search(q, 1 if rule == "top1" else k)
    hit_groups = index_groups[ids]
    if rule == "top1":
        return hit_groups[:, 0]
    if rule == "knn":
        return np.asarray(knn_vote(scores, hit_groups, names), dtype=object)
    raise ValueError(f"unknown routing rule {rule!r}; known: {', '.join(RULES)}")


def evaluate(
    queries: np.ndarray, truth: np.ndarray, index: np.ndarray, index_groups: np.ndarray
) -> dict[str, dict[str, float]]:
    """Accuracy of every rule, overall and per true catalogue."""
    out: dict[str, dict[str, float]] = {}
    for rule in RULES:
        chosen = route(queries, index, index_groups, rule)
        row = {"accuracy": float(np.mean(chosen == truth)), "queries": int(len(truth))}
        for name in sorted(set(truth.tolist()), key=str):
            mask = truth == name
            row[f"accuracy_{name}"] = float(np.mean(chosen[mask] == name))
        out[rule] = row
    return out
