"""``python -m embedder eval``: the whole evaluation (``make eval``) on any labelled folder.

Embeds the catalogue through every exported model (bytes in, cached under ``--cache-dir``), builds
an exact index per catalogue (category) and model, scores precision@1/5/10 and mAP@10 (query
excluded; with and without same-title neighbours) with bootstrap CIs, times each model, and
writes the JSON, the figures and the Markdown report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedder.errors import EmbedderError

logger = logging.getLogger("embedder.evaluation")

DEFAULT_CATALOG = "../shared/data/fashion-product-images-small"
# Another shop's photos: evaluation only, nothing is ever trained, fitted or tuned on it.
DEFAULT_UNSEEN = "../shared/data/berg-shopping-shoes-bags"
GRID_QUERIES = 4


def parser() -> argparse.ArgumentParser:
    from embedder.evaluation.routing import SERVED_ROUTER

    p = argparse.ArgumentParser(
        prog="python -m embedder eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--catalog", default=DEFAULT_CATALOG, help="any folder with labels.csv")
    p.add_argument("--model-base", default="var/models", help="exported models")
    p.add_argument("--models", default="", help="comma-separated (default: every model found)")
    p.add_argument(
        "--split-from",
        default="var/runs/infogan64/split.json",
        help="split.json of the GAN run; 'none' = every image is a query",
    )
    p.add_argument(
        "--gan-run",
        default="var/runs/infogan64",
        help="GAN run to build the head variants from ('none' to skip)",
    )
    p.add_argument(
        "--unseen",
        action="append",
        default=None,
        help="an unseen catalogue (folder with labels.csv) evaluated as a whole, routed across "
        f"--catalog's indexes; repeatable (default: {DEFAULT_UNSEEN} when present; 'none')",
    )
    p.add_argument(
        "--route-against",
        default=DEFAULT_CATALOG,
        help="with --split-from none: the shop catalogue whose indexes uploads are routed "
        "across ('none' to skip)",
    )
    p.add_argument(
        "--exploration",
        default="docs/exploration.json",
        help="the validation table written by python -m embedder explore",
    )
    p.add_argument(
        "--routing-model",
        default=SERVED_ROUTER,
        help="the gateway's GATEWAY_ROUTING_MODEL whose k-NN routing is checked against the "
        "acceptance point ('' = the default model routes)",
    )
    p.add_argument("--variants-base", default="var/eval/models")
    p.add_argument("--rebuild-variants", action="store_true")
    p.add_argument("--cache-dir", default="var/eval/cache", help="'none' disables the cache")
    p.add_argument("--json", default="docs/evaluation.json")
    p.add_argument("--markdown", default="docs/evaluation.md", help="'none' to skip")
    p.add_argument("--figures", default="docs/figures", help="'none' to skip")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-latency", action="store_true")
    p.add_argument("--latency-samples", type=int, default=50)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--log-level", default=os.environ.get("EMBEDDER_LOG_LEVEL", "INFO"))
    return p


def _opt(value: str) -> Path | None:
    return None if value.lower() == "none" else Path(value)


def _exploration(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _unseen(values: list[str] | None) -> list[Path]:
    if values is None:
        return [Path(DEFAULT_UNSEEN)] if Path(DEFAULT_UNSEEN, "labels.csv").is_file() else []
    return [Path(v) for v in values if v.lower() != "none"]


def _portable(path: Path) -> str:
    """The path as given (relative to the repo), never this machine's absolute path."""
    return str(path) if not path.is_absolute() else path.name


def machine() -> dict[str, str]:
    import faiss
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "faiss": faiss.__version__,
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
        "platform": platform.platform(),
    }


def _config(args: argparse.Namespace, models: list[str], bases: list[Path]) -> Any:
    from embedder.evaluation import runner

    return runner.EvalConfig(
        catalog=Path(args.catalog),
        model_bases=bases,
        models=models,
        split=_opt(args.split_from),
        cache_dir=_opt(args.cache_dir),
        batch_size=args.batch_size,
        resamples=args.resamples,
        seed=args.seed,
        latency=not args.no_latency,
        latency_samples=args.latency_samples,
        progress=not args.no_progress,
        route_against=_opt(args.route_against) if args.split_from.lower() == "none" else None,
    )


def _run_unseen(args: argparse.Namespace, cfg: Any) -> dict[str, dict]:
    """Each ``--unseen`` catalogue as a whole, every image a query, routed across ``cfg``'s."""
    from embedder.data.catalog import load_catalog
    from embedder.evaluation import runner

    unseen: dict[str, dict] = {}
    for folder in _unseen(args.unseen):
        logger.info(
            "unseen catalogue %s (every image a query, routed across %s)", folder, cfg.catalog
        )
        changes = {"catalog": folder, "split": None, "route_against": cfg.catalog}
        other = runner.EvalConfig(**{**vars(cfg), **changes, "latency": False})
        found = runner.run(load_catalog(folder), other)
        other_prep = found.pop("_prep")
        found.pop("_vectors")
        found["catalog"] = _portable(folder)
        found["query_sets"] = {k: v[2] for k, v in other_prep.query_sets.items()}
        unseen[folder.name] = found
    return unseen


def evaluate_cli(args: argparse.Namespace, argv: list[str]) -> dict:
    from embedder.data.catalog import load_catalog
    from embedder.evaluation import runner, variants
    from embedder.servable import model_dirs

    started = time.perf_counter()
    model_base = Path(args.model_base)
    variants_base = Path(args.variants_base)
    run = _opt(args.gan_run)
    extra = variants.build_variants(
        variants_base, run, rebuild=args.rebuild_variants, seed=args.seed
    )
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        models = [d.name for d in model_dirs(model_base)] + extra
    cfg = _config(args, models, [model_base, variants_base])
    catalog = load_catalog(cfg.catalog)
    result = runner.run(catalog, cfg)
    vectors, prep = result.pop("_vectors"), result.pop("_prep")
    unseen = _run_unseen(args, cfg)
    payload = {
        "command": "python -m embedder eval " + shlex.join(argv),
        "catalog": _portable(cfg.catalog),
        "split": str(cfg.split),
        "gan_run": str(run),
        "unseen": unseen,
        "exploration": _exploration(Path(args.exploration)),
        "routing_model": args.routing_model or cfg.default_model,
        "seed": cfg.seed,
        "resamples": cfg.resamples,
        "machine": machine(),
        "query_sets": {k: v[2] for k, v in prep.query_sets.items()},
        **result,
    }
    figures = _opt(args.figures)
    if figures is not None:
        write_figures(payload, vectors, prep, figures, run, cfg.seed)
    payload["wall_seconds"] = time.perf_counter() - started
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=1, sort_keys=True))
    markdown = _opt(args.markdown)
    if markdown is not None:
        from embedder.evaluation.document import render

        markdown.write_text(render(payload, figures_rel="figures"))
    return payload


def write_figures(
    payload: dict, vectors: dict, prep, out: Path, run: Path | None, seed: int
) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from embedder.evaluation import figures

    out.mkdir(parents=True, exist_ok=True)
    main_set = "test" if "test" in prep.query_sets else "all"
    figures.precision_chart(payload["models"], main_set, out / "precision.png")
    if any("latency" in r for r in payload["models"].values()):
        figures.latency_chart(payload["models"], out / "latency.png")
    queries = prep.query_sets[main_set][0]
    rng = np.random.default_rng(seed)
    fixed = sorted(rng.choice(queries, min(GRID_QUERIES, len(queries)), replace=False).tolist())
    for name, vecs in vectors.items():
        figures.result_grid(
            prep.files, prep.labels, vecs, prep.groups, fixed, out / f"grid_{name}.png"
        )
    payload["grid_queries"] = [prep.paths[q] for q in fixed]
    if run is not None and (run / "metrics.csv").is_file():
        from embedder.plots import plot_losses

        plot_losses(run / "metrics.csv", out / "loss_curves.png")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from fashionrec_common.logging import configure_logging

    configure_logging("embedder", args.log_level.upper(), False)
    try:
        evaluate_cli(args, list(sys.argv[1:] if argv is None else argv))
    except EmbedderError as exc:
        logger.error("%s", exc)
        return 2
    return 0
