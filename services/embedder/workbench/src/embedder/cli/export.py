"""``python -m embedder export``: a trained run (or the random-weights control) with a head.

The default head is the served default (``embedder.heads.model.DEFAULT_HEAD``); heads with
PCA-whitening fit it, label-free, on the run's TRAIN split. ``--head flat`` is the paper's
plain embedding (D's last conv map flattened).
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger("embedder")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from embedder.heads.model import DEFAULT_HEAD, HEADS, HeadConfig

    e = sub.add_parser("export", help="export a trained (or --random) embedder for TF Serving")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run directory to export (its last checkpoint)")
    src.add_argument("--random", action="store_true", help="random-weights control, no training")
    e.add_argument("--model-base", required=True, help="TF Serving model repository")
    e.add_argument("--name", required=True, help="model name, e.g. infogan or random_infogan")
    e.add_argument("--version", type=int, default=None, help="default: max existing + 1")
    e.add_argument("--model", choices=["infogan", "dcgan"], default="infogan", help="for --random")
    e.add_argument("--image-size", type=int, default=64, help="for --random")
    e.add_argument("--categorical-dim", type=int, default=8, help="for --random")
    e.add_argument("--seed", type=int, default=0, help="for --random")
    e.add_argument(
        "--head",
        choices=HEADS,
        default=DEFAULT_HEAD,
        help=f"embedding head (default {DEFAULT_HEAD}, the served default; "
        "'flat' = the paper's D map)",
    )
    e.add_argument("--pca-dims", type=int, default=HeadConfig.pca_dims)
    e.add_argument("--pca-power", type=float, default=HeadConfig.pca_power)
    e.add_argument("--colour-weight", type=float, default=HeadConfig.colour_weight)
    e.add_argument(
        "--framing",
        choices=["object", "pad"],
        default="object" if HeadConfig.object_crop else "pad",
        help="'pad': pad the whole photo to a square (the default); 'object': crop each image "
        "to its product first (lost on the validation rows, docs/evaluation.md)",
    )
    e.add_argument("--catalog", default=None, help="fit PCA heads here (default: the run's)")
    e.add_argument("--split-from", default=None, help="its split.json (default: RUN/split.json)")
    e.add_argument(
        "--max-pixels",
        type=int,
        default=25_000_000,
        help="refuse images above this many pixels (by header) in the graph; gateway's default",
    )
    e.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from embedder.heads.fit import export_head, gan_and_train_files
    from embedder.heads.model import HeadConfig

    config = HeadConfig.parse(
        args.head,
        pca_dims=args.pca_dims,
        pca_power=args.pca_power,
        colour_weight=args.colour_weight,
        object_crop=args.framing == "object",
    )
    gan, train, meta = gan_and_train_files(
        None if args.random else args.run,
        random_model=args.model,
        image_size=args.image_size,
        categorical_dim=args.categorical_dim,
        seed=args.seed,
        catalog=args.catalog,
        split_from=args.split_from,
        needs_files=config.uses_pca,
    )
    path = export_head(
        gan,
        config,
        train,
        model_base=args.model_base,
        name=args.name,
        version=args.version,
        metadata=meta,
        max_pixels=args.max_pixels,
    )
    logger.info("exported %s", path)
    return 0
