"""The ``export`` subcommand: a trained run (or the random-weights control) with an embedding head.

The default head is the served default (``improve.heads.DEFAULT_HEAD``); heads with PCA-whitening
fit it, label-free, on the run's TRAIN split. ``--head flat`` is the paper's plain embedding.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run_export(args: argparse.Namespace) -> Path:
    from embedder.improve.export import export_head, gan_and_train_files
    from embedder.improve.heads import HeadConfig

    config = HeadConfig.parse(args.head)
    gan, train, meta = gan_and_train_files(
        None if args.random else args.run,
        random_model=args.model,
        image_size=args.image_size,
        seed=args.seed,
        catalog=args.catalog,
        split_from=args.split_from,
        needs_files=config.uses_pca,
    )
    return export_head(
        gan,
        config,
        train,
        model_base=args.model_base,
        name=args.name,
        version=args.version,
        metadata=meta,
        max_pixels=args.max_pixels,
    )
