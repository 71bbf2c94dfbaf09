"""``python -m embedder {train,export,evaluate}``: train GANs, export servables, precision@k.

(The model server is ``python -m embedder.serving``.)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from embedder.errors import EmbedderError
from fashionrec_common.logging import configure_logging

logger = logging.getLogger("embedder")

EPILOG = """examples:
  python -m embedder train --catalog ../shared/data/fashion-product-images-small \\
      --out var/runs/infogan64 --epochs 4
  python -m embedder export --run var/runs/infogan64 --model-base var/models --name infogan
  python -m embedder export --random --model infogan --image-size 64 \\
      --model-base var/models --name random_infogan
  python -m embedder evaluate --model-base var/models \\
      --models infogan,random_infogan,mobilenet_v2 \\
      --catalog ../shared/data/fashion-product-images-small \\
      --split-from var/runs/infogan64/split.json --k 5
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m embedder",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=os.environ.get("EMBEDDER_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-json", action="store_true", help="JSON log lines (for jobs)")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN on the TRAIN split (resumes from --out)")
    t.add_argument("--catalog", required=True, help="folder of images (+ optional labels.csv)")
    t.add_argument("--out", required=True, help="run directory (resumed when it has a checkpoint)")
    t.add_argument("--model", choices=["infogan", "dcgan"], default="infogan")
    t.add_argument("--image-size", type=int, default=64, help="64 for CPU, 224 for the paper")
    t.add_argument("--epochs", type=int, default=5, help="total epochs (including resumed ones)")
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many steps total")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--seed", type=int, default=0, help="seeds weights, noise, split and order")
    t.add_argument("--categorical-dim", type=int, default=8, help="InfoGAN code size (8 shoes)")
    t.add_argument("--lambda-info", type=float, default=1.0, help="information loss weight")
    t.add_argument("--learning-rate", type=float, default=2e-4)
    t.add_argument("--test-fraction", type=float, default=0.2, help="held out, stratified")
    t.add_argument("--checkpoint-every", type=int, default=100, help="steps")
    t.add_argument("--sample-every", type=int, default=200, help="steps between sample grids")
    t.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    t.add_argument("--dropout", type=float, default=0.5, help="D's dropout (Table 8.1: 0.5)")
    t.add_argument(
        "--contrastive-weight",
        type=float,
        default=0.0,
        help="SimCLR loss on augmented reals inside D (ContraD-style); 0 = plain InfoGAN",
    )
    t.add_argument("--temperature", type=float, default=0.2, help="NT-Xent temperature")
    t.add_argument(
        "--rotation-weight",
        type=float,
        default=0.0,
        help="SS-GAN: D predicts the rotation (0/90/180/270) of real images; 0 = off",
    )
    t.add_argument("--diff-augment", action="store_true", help="augment D's real/fake inputs")
    t.add_argument("--min-crop-scale", type=float, default=0.35, help="random resized crop")
    t.add_argument("--colour-strength", type=float, default=1.0, help="colour jitter strength")
    t.add_argument("--d-learning-rate", type=float, default=None, help="default: --learning-rate")
    t.add_argument(
        "--generator-filters",
        default=None,
        help="G's three conv widths, e.g. 128,64,32 (default 256,128,64)",
    )
    t.add_argument("--max-seconds", type=float, default=None, help="wall-clock training budget")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")

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
        default=None,
        help="embedding head (default: the served default; 'flat' = the paper's D map)",
    )
    e.add_argument("--catalog", default=None, help="fit PCA heads here (default: the run's)")
    e.add_argument("--split-from", default=None, help="its split.json (default: RUN/split.json)")
    e.add_argument(
        "--max-pixels",
        type=int,
        default=25_000_000,
        help="refuse images above this many pixels (by header) in the graph; gateway's default",
    )

    v = sub.add_parser("evaluate", help="precision@k of exported models on a held-out split")
    v.add_argument("--model-base", required=True)
    v.add_argument("--models", required=True, help="comma-separated model names")
    v.add_argument("--catalog", required=True)
    v.add_argument("--split-from", required=True, help="split.json of a training run")
    v.add_argument("--k", type=int, default=5, help="also reports 1 and 10")
    v.add_argument("--batch-size", type=int, default=64)
    v.add_argument("--json", default=None, help="write results here (default: stdout only)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("embedder", args.log_level.upper(), args.log_json)
    try:
        if args.command == "train":
            from embedder.train import TrainConfig, train

            summary = train(
                TrainConfig(
                    catalog=args.catalog,
                    out=args.out,
                    model=args.model,
                    image_size=args.image_size,
                    epochs=args.epochs,
                    max_steps=args.max_steps,
                    batch_size=args.batch_size,
                    seed=args.seed,
                    categorical_dim=args.categorical_dim,
                    lambda_info=args.lambda_info,
                    learning_rate=args.learning_rate,
                    test_fraction=args.test_fraction,
                    checkpoint_every=args.checkpoint_every,
                    sample_every=args.sample_every,
                    tensorboard=args.tensorboard,
                    progress=not args.no_progress,
                    dropout=args.dropout,
                    contrastive_weight=args.contrastive_weight,
                    temperature=args.temperature,
                    rotation_weight=args.rotation_weight,
                    diff_augment=args.diff_augment,
                    min_crop_scale=args.min_crop_scale,
                    colour_strength=args.colour_strength,
                    d_learning_rate=args.d_learning_rate,
                    generator_filters=(
                        tuple(int(f) for f in args.generator_filters.split(","))
                        if args.generator_filters
                        else None
                    ),
                    max_seconds=args.max_seconds,
                )
            )
            logger.info("done: %d steps, %.0f s total", summary["steps"], summary["train_seconds"])
        elif args.command == "export":
            from embedder.cli_export import run_export
            from embedder.improve.heads import DEFAULT_HEAD

            args.head = args.head or DEFAULT_HEAD
            logger.info("exported %s", run_export(args))
        else:
            from embedder.evaluate import run_evaluate

            run_evaluate(args)
    except EmbedderError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
