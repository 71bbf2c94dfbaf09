"""``python -m embedder.improve export``: export a GAN run with an improved embedding head.

Example (the default ``infogan`` servable):
  python -m embedder.improve export --run var/runs/infogan64 --model-base var/models \\
      --name infogan --head pool5-pca
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from embedder.errors import EmbedderError
from embedder.improve.heads import DEFAULT_HEAD, HEADS, HeadConfig
from fashionrec_common.logging import configure_logging

logger = logging.getLogger("embedder.improve")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m embedder.improve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=os.environ.get("EMBEDDER_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="fit the head on the run's TRAIN split and export it")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="trained run directory (its last checkpoint)")
    src.add_argument("--random", action="store_true", help="random-weights control")
    e.add_argument("--model-base", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--version", type=int, default=None)
    e.add_argument("--head", choices=HEADS, default=DEFAULT_HEAD)
    e.add_argument("--pca-dims", type=int, default=HeadConfig.pca_dims)
    e.add_argument("--pca-power", type=float, default=HeadConfig.pca_power)
    e.add_argument("--colour-weight", type=float, default=HeadConfig.colour_weight)
    e.add_argument("--catalog", default=None, help="default: the run's catalogue")
    e.add_argument("--split-from", default=None, help="default: RUN/split.json")
    e.add_argument("--image-size", type=int, default=64, help="for --random")
    e.add_argument("--seed", type=int, default=0, help="for --random")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("embedder", args.log_level.upper(), False)
    from embedder.improve.export import export_head, gan_and_train_files

    config = HeadConfig.parse(
        args.head,
        pca_dims=args.pca_dims,
        pca_power=args.pca_power,
        colour_weight=args.colour_weight,
    )
    try:
        gan, train, meta = gan_and_train_files(
            args.run,
            image_size=args.image_size,
            seed=args.seed,
            catalog=args.catalog,
            split_from=args.split_from,
        )
        path = export_head(
            gan,
            config,
            train,
            model_base=args.model_base,
            name=args.name,
            version=args.version,
            metadata=meta,
        )
    except EmbedderError as exc:
        logger.error("%s", exc)
        return 2
    logger.info("exported %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
