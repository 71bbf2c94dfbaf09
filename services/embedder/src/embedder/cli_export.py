"""The ``export`` subcommand: a trained run's D embedding, or a random-weights control."""

from __future__ import annotations

import argparse
from pathlib import Path

import keras

from embedder.export import export_model
from embedder.models import build_gan, embedding_extractor


def run_export(args: argparse.Namespace) -> Path:
    if args.random:
        keras.utils.set_random_seed(args.seed)
        gan = build_gan(
            args.model, image_size=args.image_size, categorical_dim=args.categorical_dim
        )
        meta = {"source": "random weights (control)", "model": args.model, "seed": args.seed}
    else:
        from embedder.train import load_trained

        gan, summary = load_trained(args.run)
        meta = {
            "source": str(Path(args.run).resolve()),
            "model": gan.kind,
            "checkpoint": summary["checkpoint"],
            "checkpoint_rule": summary["checkpoint_rule"],
            "steps": summary["steps"],
        }
    extractor = embedding_extractor(gan, name=args.name)
    return export_model(
        extractor,
        input_size=gan.image_size,
        model_base=args.model_base,
        name=args.name,
        version=args.version,
        metadata=meta,
    )
