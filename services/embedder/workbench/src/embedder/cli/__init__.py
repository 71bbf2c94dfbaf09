"""``python -m embedder <command>``: the workbench's one CLI.

train      train a GAN (InfoGAN/DCGAN, optional SimCLR/rotation self-supervision) on a catalogue
export     export a trained run (or the random-weights control) with an embedding head
baselines  ImageNet CNN baselines: list, export, finetune, verify
eval       the whole evaluation (``make eval``) on any labelled folder -> docs/evaluation.md
explore    compare runs x heads on the validation rows only (how settings are chosen)

Each command has its own ``--help``. The model server is another package
(``python -m embedder_server``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from embedder.errors import EmbedderError
from fashionrec_common.logging import configure_logging

logger = logging.getLogger("embedder")

EPILOG = """examples:
  python -m embedder train --catalog ../shared/data/fashion-product-images-small \\
      --out var/runs/infogan64 --epochs 4
  python -m embedder export --run var/runs/infogan64 --model-base var/models --name infogan
  python -m embedder export --random --image-size 64 --model-base var/models \\
      --name random_infogan --catalog ../shared/data/fashion-product-images-small \\
      --split-from var/runs/infogan64/split.json
  python -m embedder baselines export --name mobilenet_v2 --model-base var/models
  python -m embedder eval --split-from var/runs/infogan64/split.json --models infogan,mobilenet_v2
"""


def _delegated() -> dict[str, tuple[str, Callable[[list[str]], int]]]:
    """Commands with their own parser (imported lazily: TensorFlow loads only when needed)."""

    def baselines(argv: list[str]) -> int:
        from embedder.baselines.cli import main

        return main(argv)

    def evaluation(argv: list[str]) -> int:
        from embedder.evaluation.cli import main

        return main(argv)

    def explore(argv: list[str]) -> int:
        from embedder.evaluation.explore import main

        return main(argv)

    return {
        "baselines": ("ImageNet baselines: list, export, finetune, verify", baselines),
        "eval": ("the whole evaluation (make eval) -> docs/evaluation.md", evaluation),
        "explore": ("runs x heads on validation rows only (choosing settings)", explore),
    }


def parser() -> argparse.ArgumentParser:
    from embedder.cli import export, train

    top = argparse.ArgumentParser(
        prog="python -m embedder",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--log-level", default=os.environ.get("EMBEDDER_LOG_LEVEL", "INFO"))
    top.add_argument("--log-json", action="store_true", help="JSON log lines (for jobs)")
    sub = top.add_subparsers(dest="command", required=True)
    train.add_parser(sub)
    export.add_parser(sub)
    for name, (help_, _) in _delegated().items():
        sub.add_parser(name, help=help_, add_help=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    delegated = _delegated()
    first = 0
    while first < len(argv) and argv[first].startswith("-"):
        first += 1 if "=" in argv[first] or argv[first] in ("-h", "--help", "--log-json") else 2
    if first < len(argv) and argv[first] in delegated:
        return delegated[argv[first]][1](argv[first + 1 :])
    args = parser().parse_args(argv)
    configure_logging("embedder", args.log_level.upper(), args.log_json)
    try:
        return int(args.handler(args))
    except EmbedderError as exc:
        logger.error("%s", exc)
        return 2
