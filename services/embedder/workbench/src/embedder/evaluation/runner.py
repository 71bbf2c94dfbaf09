"""One evaluation run: resolve models, embed (cached), score every query set, time each model."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedder.data.catalog import Catalog, Item, read_split
from embedder.data.images import load_image
from embedder.errors import ImageError, RunError
from embedder.evaluation import embed as emb
from embedder.evaluation import metrics
from embedder.repository import latest_version

logger = logging.getLogger(__name__)

REFERENCE = "mobilenet_v2"
VALIDATION_FRACTION = 0.2


@dataclass
class EvalConfig:
    catalog: Path
    model_bases: list[Path]
    models: list[str]
    split: Path | None = None
    cache_dir: Path | None = None
    batch_size: int = 64
    resamples: int = 1000
    seed: int = 0
    latency: bool = True
    latency_samples: int = 50
    progress: bool = True
    reference: str = REFERENCE
    default_model: str = "infogan"
    # Catalogue whose indexes uploads are routed across (the shop's own, e.g. Myntra) when the
    # evaluated catalogue has no split; with a split, test queries are routed across TRAIN.
    route_against: Path | None = None


@dataclass
class Prepared:
    """The catalogue as arrays, and the query sets (name -> (queries, pool, description))."""

    files: list[Path]
    labels: np.ndarray
    titles: np.ndarray | None
    groups: np.ndarray
    paths: list[str]
    query_sets: dict[str, tuple[np.ndarray, np.ndarray, str]] = field(default_factory=dict)


def usable_items(catalog: Catalog) -> list[Item]:
    """Items whose files decode (the same checks as training); bad files are reported, skipped."""
    usable = []
    for item in catalog.items:
        try:
            load_image(catalog.absolute(item), 8)
        except ImageError as exc:
            logger.warning("skipping %s: %s", item.path, exc)
            continue
        usable.append(item)
    return usable


def prepare(catalog: Catalog, split_path: Path | None, seed: int) -> Prepared:
    items = usable_items(catalog)
    paths = [item.path for item in items]
    labels = np.array([item.label for item in items], dtype=object)
    raw_titles = [item.meta.get("product_title", "") for item in items]
    titles = np.array(raw_titles, dtype=object) if any(raw_titles) else None
    groups = np.array([item.meta.get("category", "all") for item in items], dtype=object)
    prep = Prepared([catalog.absolute(i) for i in items], labels, titles, groups, paths)
    everything = np.arange(len(items))
    if split_path is None:
        prep.query_sets["all"] = (everything, everything, "every image queries the whole catalogue")
        return prep
    split = read_split(split_path)
    index_of = {p: i for i, p in enumerate(paths)}
    missing = [p for p in split["test"] + split["train"] if p not in index_of]
    if len(missing) > len(paths) // 100:
        raise RunError(f"{len(missing)} split paths are not in the catalogue (e.g. {missing[0]})")
    test = np.array(sorted(index_of[p] for p in split["test"] if p in index_of))
    train = np.array(sorted(index_of[p] for p in split["train"] if p in index_of))
    prep.query_sets["test"] = (test, everything, "test-split queries, index = whole catalogue")
    if titles is not None:
        seen = set(titles[train].tolist())
        fresh = np.array([q for q in test if titles[q] not in seen], dtype=int)
        prep.query_sets["test_unseen_titles"] = (
            fresh,
            everything,
            "test queries whose product title never occurs in train (product-disjoint)",
        )
    rng = np.random.default_rng(seed)
    val = np.sort(rng.choice(train, max(1, int(len(train) * VALIDATION_FRACTION)), replace=False))
    prep.query_sets["validation"] = (val, train, "20 % of TRAIN as queries, index = TRAIN only")
    return prep


def resolve(bases: list[Path], name: str) -> Path | None:
    for base in bases:
        found = latest_version(base / name)
        if found is not None:
            return base / name / str(found)
    return None


def _embed(
    version_dir: Path, files: list[Path], cfg: EvalConfig, label: str
) -> tuple[np.ndarray, float, bool]:
    """Embed ``files`` as ``label`` with the run's batch size, cache and progress settings."""
    return emb.embed(
        version_dir,
        files,
        label=label,
        batch_size=cfg.batch_size,
        cache_dir=cfg.cache_dir,
        progress=cfg.progress,
    )


def score_model(prep: Prepared, vectors: np.ndarray, cfg: EvalConfig) -> tuple[dict, dict]:
    """Summaries per query set (overall, per catalogue, excl. same title) and per-query p@5."""
    out: dict[str, Any] = {}
    per_query: dict[str, np.ndarray] = {}
    kw = {"resamples": cfg.resamples, "seed": cfg.seed}
    for set_name, (queries, pool, desc) in prep.query_sets.items():
        if len(queries) == 0:
            continue
        scores = metrics.query_scores(vectors, prep.labels, queries, groups=prep.groups, pool=pool)
        summary_all = metrics.summarise(scores, prep.labels, **kw)
        entry: dict[str, Any] = {"description": desc, **summary_all}
        entry["per_catalogue"] = {}
        for group in sorted(set(prep.groups[queries].tolist()), key=str):
            mask = prep.groups[queries] == group
            summary = metrics.summarise(scores, prep.labels, mask=mask, **kw)
            summary.pop("per_class")
            entry["per_catalogue"][str(group)] = summary
        if prep.titles is not None:
            nt = metrics.query_scores(
                vectors, prep.labels, queries, groups=prep.groups, pool=pool, titles=prep.titles
            )
            summary = metrics.summarise(nt, prep.labels, **kw)
            summary.pop("per_class")
            entry["excluding_same_title"] = summary
        out[set_name] = entry
        per_query[set_name] = scores.values["p@5"]
    return out, per_query


def run(catalog: Catalog, cfg: EvalConfig) -> dict[str, Any]:
    prep = prepare(catalog, cfg.split, cfg.seed)
    results: dict[str, Any] = {}
    per_query: dict[str, dict[str, np.ndarray]] = {}
    vectors_of: dict[str, np.ndarray] = {}
    for name in cfg.models:
        version_dir = resolve(cfg.model_bases, name)
        if version_dir is None:
            logger.warning("model %s: no exported version found, skipped", name)
            continue
        vectors, seconds, cached = _embed(version_dir, prep.files, cfg, name)
        logger.info(
            "%s: %d x %d vectors (%s)",
            name,
            *vectors.shape,
            "cache" if cached else f"{seconds:.0f} s",
        )
        scored, per_query[name] = score_model(prep, vectors, cfg)
        entry: dict[str, Any] = {
            "version_dir": str(version_dir),
            "dimension": int(vectors.shape[1]),
            "images": len(prep.files),
            "embed_seconds": seconds or None,  # from the run that filled the cache
            "embeddings_cached": cached,
            "sets": scored,
        }
        if "test" not in prep.query_sets:  # a catalogue never fitted on: try adapting to it
            entry["index_time_whitening"] = adapted(prep, vectors, per_query[name], cfg)
        routing_set = _routing(prep, vectors, version_dir, name, cfg)
        if routing_set is not None:
            entry["routing"] = routing_set
        if cfg.latency:
            entry["latency"] = emb.latency(version_dir, prep.files, samples=cfg.latency_samples)
        results[name] = entry
        vectors_of[name] = vectors
    comparisons = compare(results, per_query, cfg)
    return {"models": results, "comparisons": comparisons, "_vectors": vectors_of, "_prep": prep}


def adapted(
    prep: Prepared, vectors: np.ndarray, plain: dict[str, np.ndarray], cfg: EvalConfig
) -> dict[str, Any]:
    """p@5 after index-time adaptation: PCA-whitening fitted, without labels, on the vectors of
    the catalogue being indexed (what ingest could do, since a shop indexes its own photos),
    applied to index and queries. Settings are the served head's (``HeadConfig``), not tuned."""
    from embedder.heads.model import HeadConfig, fit_whitening

    head = HeadConfig()
    whitening = fit_whitening(vectors, head.pca_dims, head.pca_power)
    moved = vectors @ whitening.kernel + whitening.bias
    out: dict[str, Any] = {"pca_dims": int(whitening.kernel.shape[1]), "power": head.pca_power}
    for set_name, (queries, pool, _) in prep.query_sets.items():
        scores = metrics.query_scores(moved, prep.labels, queries, groups=prep.groups, pool=pool)
        p5 = scores.values["p@5"]
        out[set_name] = {
            "p@5": float(p5.mean()),
            "minus_served": metrics.paired_difference(
                p5, plain[set_name], resamples=cfg.resamples, seed=cfg.seed
            ),
        }
    return out


def _routing(
    prep: Prepared, vectors: np.ndarray, version_dir: Path, name: str, cfg: EvalConfig
) -> dict[str, Any] | None:
    """Routing accuracy of uploads without a catalogue (see ``evaluation.routing``)."""
    from embedder.data.catalog import load_catalog
    from embedder.evaluation import routing

    if "test_unseen_titles" in prep.query_sets and cfg.route_against is None:
        queries = prep.query_sets["test_unseen_titles"][0]
        train = prep.query_sets["validation"][1]
        result = routing.evaluate(
            vectors[queries], prep.groups[queries], vectors[train], prep.groups[train]
        )
        return {"against": "TRAIN split of this catalogue", "rules": result}
    if cfg.route_against is None:
        return None
    shop = prepare(load_catalog(cfg.route_against), None, cfg.seed)
    if set(prep.groups.tolist()) - set(shop.groups.tolist()):
        logger.warning("routing: %s lacks some of the evaluated catalogues", cfg.route_against)
    shop_vectors, _, _ = _embed(version_dir, shop.files, cfg, f"{name} (routing index)")
    result = routing.evaluate(vectors, prep.groups, shop_vectors, shop.groups)
    return {"against": str(cfg.route_against), "rules": result}


def compare(results: dict, per_query: dict, cfg: EvalConfig) -> dict[str, Any]:
    """Paired bootstrap of p@5 differences: every model vs the reference, per query set."""
    out: dict[str, Any] = {}
    for name, sets in per_query.items() if cfg.reference in per_query else []:
        if name == cfg.reference:
            continue
        out[name] = {
            s: metrics.paired_difference(
                sets[s], per_query[cfg.reference][s], resamples=cfg.resamples, seed=cfg.seed
            )
            for s in sets
            if s in per_query[cfg.reference]
        }
    default: dict[str, Any] = {}
    if cfg.default_model in per_query:
        mine = per_query[cfg.default_model]
        for name, sets in per_query.items():
            if name != cfg.default_model:
                default[name] = {
                    s: metrics.paired_difference(
                        mine[s], sets[s], resamples=cfg.resamples, seed=cfg.seed
                    )
                    for s in sets
                    if s in mine
                }
    return {
        "reference": cfg.reference,
        "p@5_minus_reference": out,
        "default": cfg.default_model,
        "p@5_default_minus_model": default,
    }
