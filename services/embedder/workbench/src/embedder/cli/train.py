"""``python -m embedder train``: train a GAN on a catalogue's TRAIN split (resumable)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields

logger = logging.getLogger("embedder")

# TrainConfig fields set one-to-one from flags of the same name.
_SAME_NAME = (
    "catalog", "out", "model", "image_size", "epochs", "max_steps", "batch_size", "seed",
    "categorical_dim", "lambda_info", "learning_rate", "test_fraction", "checkpoint_every",
    "sample_every", "tensorboard", "dropout", "contrastive_weight", "temperature",
    "rotation_weight", "rotation_augment", "diff_augment", "min_crop_scale", "colour_strength",
    "d_learning_rate", "max_seconds",
)  # fmt: skip


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    t.add_argument(
        "--dropout",
        type=float,
        default=0.1,
        help="D's dropout (Table 8.1: 0.5)",
    )
    _self_supervision(t)
    t.add_argument("--d-learning-rate", type=float, default=None, help="default: --learning-rate")
    t.add_argument(
        "--generator-filters",
        default=None,
        help="G's three conv widths, e.g. 128,64,32 (default 256,128,64)",
    )
    t.add_argument("--max-seconds", type=float, default=None, help="wall-clock training budget")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.set_defaults(handler=run)


def _self_supervision(t: argparse.ArgumentParser) -> None:
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
        default=1.0,
        help="SS-GAN: D predicts the rotation (0/90/180/270) of real images; 0 = the paper's",
    )
    t.add_argument(
        "--rotation-augment",
        action="store_true",
        help="predict the rotation of augmented views (crop, flip, colour) of the reals",
    )
    t.add_argument("--diff-augment", action="store_true", help="augment D's real/fake inputs")
    t.add_argument("--min-crop-scale", type=float, default=0.35, help="random resized crop")
    t.add_argument("--colour-strength", type=float, default=1.0, help="colour jitter strength")


def run(args: argparse.Namespace) -> int:
    from embedder.train import TrainConfig, train

    known = {f.name for f in fields(TrainConfig)}
    assert set(_SAME_NAME) <= known, set(_SAME_NAME) - known
    filters = args.generator_filters
    config = TrainConfig(
        **{name: getattr(args, name) for name in _SAME_NAME},
        progress=not args.no_progress,
        generator_filters=tuple(int(f) for f in filters.split(",")) if filters else None,
    )
    summary = train(config)
    logger.info("done: %d steps, %.0f s total", summary["steps"], summary["train_seconds"])
    return 0
