"""Retrieval metrics on hand-made cases, bootstrap determinism, the in-graph colour histogram."""

from __future__ import annotations

import numpy as np
import pytest

from embedder.evaluation import metrics
from embedder.heads.colour import BINS, colour_extractor


def _unit(angles: list[float]) -> np.ndarray:
    a = np.radians(np.asarray(angles, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


# Items on a circle: the neighbour order of item 0 is 1, 2, 3, 4 (increasing angle).
VECTORS = _unit([0, 10, 20, 30, 40, 180])
LABELS = np.array(["a", "a", "b", "a", "b", "a"], dtype=object)
TITLES = np.array(["t0", "t0", "t2", "t3", "t4", "t5"], dtype=object)


def test_precision_excludes_the_query_itself() -> None:
    s = metrics.query_scores(VECTORS, LABELS, np.array([0]))
    # neighbours of 0: 1 (a), 2 (b), 3 (a), 4 (b), 5 (a)
    assert s.values["p@1"][0] == pytest.approx(1.0)
    assert s.values["p@5"][0] == pytest.approx(3 / 5)
    # only 5 neighbours exist: p@10 averages over those 5
    assert s.values["p@10"][0] == pytest.approx(3 / 5)


def test_map_at_10_by_hand() -> None:
    s = metrics.query_scores(VECTORS, LABELS, np.array([0]))
    # relevant at ranks 1, 3, 5: precisions 1, 2/3, 3/5; 3 relevant items in the index
    assert s.values["map@10"][0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_same_title_neighbours_are_dropped() -> None:
    s = metrics.query_scores(VECTORS, LABELS, np.array([0]), titles=TITLES)
    # item 1 shares title t0: neighbours become 2 (b), 3 (a), 4 (b), 5 (a)
    assert s.values["p@1"][0] == pytest.approx(0.0)
    assert s.values["p@5"][0] == pytest.approx(2 / 4)
    assert s.values["map@10"][0] == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_groups_are_separate_indexes_and_pool_restricts() -> None:
    groups = np.array(["x", "y", "x", "x", "y", "y"], dtype=object)
    s = metrics.query_scores(VECTORS, LABELS, np.array([0]), groups=groups)
    # group x: neighbours 2 (b), 3 (a)
    assert s.values["p@1"][0] == pytest.approx(0.0)
    assert s.values["p@5"][0] == pytest.approx(1 / 2)
    pooled = metrics.query_scores(VECTORS, LABELS, np.array([0]), pool=np.array([0, 3, 4]))
    assert pooled.values["p@1"][0] == pytest.approx(1.0)


def test_bootstrap_is_deterministic_and_brackets_the_mean() -> None:
    values = np.random.default_rng(1).random(200)
    first = metrics.bootstrap_ci(values, resamples=300, seed=0)
    assert first == metrics.bootstrap_ci(values, resamples=300, seed=0)
    assert first != metrics.bootstrap_ci(values, resamples=300, seed=1)
    assert first[0] < values.mean() < first[1]
    diff = metrics.paired_difference(values, values - 0.1, resamples=300)
    assert diff["mean"] == pytest.approx(0.1)
    assert diff["ci95_low"] == pytest.approx(0.1) and diff["ci95_high"] == pytest.approx(0.1)


def test_summarise_per_class_and_mask() -> None:
    s = metrics.query_scores(VECTORS, LABELS, np.arange(6))
    mask = LABELS == "b"
    out = metrics.summarise(s, LABELS, mask=mask, resamples=50)
    assert out["queries"] == 2 and set(out["per_class"]) == {"b"}
    assert out["p@5"] == pytest.approx(s.values["p@5"][mask].mean())


def test_colour_histogram_bins_and_background() -> None:
    model = colour_extractor(8)
    red = np.zeros((1, 8, 8, 3), np.float32)
    red[..., 0] = 255.0
    white = np.full((1, 8, 8, 3), 255.0, np.float32)
    half = white.copy()
    half[:, :4] = red[:, :4]
    out = np.asarray(model(np.concatenate([red, white, half])))
    assert out.shape == (3, BINS)
    # pure red: hue bin 0, saturation and value in their top bins -> index 0*16 + 3*4 + 3
    assert out[0, 15] == pytest.approx(1.0) and out[0].sum() == pytest.approx(1.0)
    assert not out[1].any()  # white background only: empty histogram
    # white pixels are ignored, so half red on white is still all red
    np.testing.assert_allclose(out[2], out[0], atol=1e-6)


def test_index_time_whitening_recovers_classes_a_nuisance_direction_hides() -> None:
    from embedder.evaluation.document import adaptation_table
    from embedder.evaluation.runner import EvalConfig, Prepared, adapted

    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["a", "b"], dtype=object), 40)
    # Class on a weak axis, a strong nuisance (lighting, framing) on another: the dot product
    # sees mostly the nuisance until whitening rescales both.
    x = np.zeros((80, 4))
    x[:, 0] = np.where(labels == "a", 0.1, -0.1) + rng.normal(0, 0.01, 80)
    x[:, 1] = rng.normal(0, 3.0, 80)
    x[:, 2:] = rng.normal(0, 0.01, (80, 2))
    everything = np.arange(80)
    prep = Prepared(
        [], labels, None, np.array(["shoes"] * 80, dtype=object), [],
        {"all": (everything, everything, "all")},
    )  # fmt: skip
    plain = metrics.query_scores(x.astype(np.float32), labels, everything, groups=prep.groups)
    cfg = EvalConfig(catalog=None, model_bases=[], models=[], resamples=50)  # type: ignore[arg-type]
    out = adapted(prep, x.astype(np.float32), {"all": plain.values["p@5"]}, cfg)
    assert out["all"]["p@5"] > plain.values["p@5"].mean() + 0.2
    assert out["all"]["minus_served"]["ci95_low"] > 0
    models = {"m": {"sets": {"all": {"p@5": float(plain.values["p@5"].mean())}},
                    "index_time_whitening": out}}  # fmt: skip
    table = "\n".join(adaptation_table(models, "all"))
    assert "| `m` |" in table and f"{out['all']['p@5']:.3f}" in table
