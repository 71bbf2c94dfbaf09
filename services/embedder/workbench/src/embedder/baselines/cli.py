"""CLI: ``python -m embedder baselines {list,export,finetune,verify}``.

list      table of baselines, whether real weights are available here, and why not
export    build one baseline and write it to a TF Serving model repository
finetune  train a new dense head on the catalogue's category column, export <name>_ft
verify    compare an imported MobileNet with its TFLite original on scikit-image photos
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fashionrec_common.logging import configure_logging

logger = logging.getLogger("embedder.baselines")

DEFAULT_WEIGHTS_DIR = "../shared/weights/imagenet"
DEFAULT_CACHE_DIR = "var/weights"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m embedder baselines", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    lst = sub.add_parser("list", help="which baselines have real weights")
    lst.add_argument("--weights-dir", default=DEFAULT_WEIGHTS_DIR)
    exp = sub.add_parser("export", help="export a baseline as a TF Serving servable")
    exp.add_argument("--name", required=True)
    exp.add_argument("--model-base", required=True, type=Path)
    exp.add_argument(
        "--weights-dir",
        default=DEFAULT_WEIGHTS_DIR,
        help="shared ImageNet weights dir, a dir with <name>_notop.h5, a weights file, "
        "or 'imagenet' for the Keras download",
    )
    exp.add_argument("--input-size", type=int, default=None)
    exp.add_argument("--version", type=int, default=None)
    exp.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    _finetune_parser(sub)
    ver = sub.add_parser("verify", help="imported MobileNet vs TFLite interpreter")
    ver.add_argument("--name", default="mobilenet_v2", choices=("mobilenet_v2", "mobilenet"))
    ver.add_argument("--weights-dir", default=DEFAULT_WEIGHTS_DIR)
    ver.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    return parser


def _finetune_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ft = sub.add_parser(
        "finetune",
        help="paper's fine-tuned baseline: new dense head trained on the category column",
        description="Replace the ImageNet classifier by Dropout(0.5) -> Dense(256, 'ft_dense') -> "
        "Dense(K), train it (frozen backbone, Adam, class-balanced softmax cross-entropy) on the "
        "TRAIN split's 'category' column of labels.csv (never on 'class'), and export backbone + "
        "ft_dense (L2-normalised) as the servable <name>_ft.",
        epilog="example: python -m embedder baselines finetune --name mobilenet_v2 "
        "--catalog ../shared/data/fashion-product-images-small "
        "--split-from var/runs/contrad64/split.json --model-base var/models",
    )
    ft.add_argument("--name", required=True, help="baseline to fine-tune (see `list`)")
    ft.add_argument(
        "--catalog", required=True, type=Path, help="catalogue folder with a labels.csv"
    )
    ft.add_argument(
        "--split-from",
        required=True,
        type=Path,
        help="split.json of a run; only its 'train' list is read",
    )
    ft.add_argument("--model-base", required=True, type=Path, help="TF Serving model base")
    ft.add_argument(
        "--weights-dir", default=DEFAULT_WEIGHTS_DIR, help="as for export (default: %(default)s)"
    )
    ft.add_argument(
        "--epochs", type=int, default=5, help="head training epochs (default: %(default)s)"
    )
    ft.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="Adam learning rate (default: %(default)s)",
    )
    ft.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="images per embedding batch (default: %(default)s)",
    )
    ft.add_argument("--input-size", type=int, default=None, help="default: the baseline's own")
    ft.add_argument("--seed", type=int, default=0, help="head init and shuffling seed")
    ft.add_argument("--version", type=int, default=None, help="default: max existing + 1")
    ft.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE_DIR,
        help="imported TFLite weights cache (default: %(default)s)",
    )
    ft.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def _list(args: argparse.Namespace) -> int:
    from embedder.baselines.registry import SPECS, available

    rows = available(args.weights_dir)
    logger.info("%-20s %-9s %-8s %5s %5s  %s", "name", "available", "source", "size", "dim", "why")
    for name, row in rows.items():
        s = SPECS[name]
        logger.info(
            "%-20s %-9s %-8s %5d %5d  %s",
            name,
            "yes" if row.available else "no",
            row.source,
            s.input_size,
            s.dimension,
            row.reason,
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from embedder.baselines.registry import build_extractor, spec
    from embedder.errors import WeightsUnavailableError
    from embedder.servable import export_model

    s = spec(args.name)
    size = args.input_size or s.input_size
    try:
        extractor = build_extractor(
            args.name, weights=args.weights_dir, input_size=size, cache_dir=args.cache_dir
        )
    except WeightsUnavailableError as exc:
        logger.error("cannot export %s: %s", args.name, exc)
        return 2
    target = export_model(
        extractor,
        input_size=size,
        model_base=args.model_base,
        name=args.name,
        version=args.version,
        metadata={"baseline": True, "preprocessing": s.preprocessing, "source": s.source},
    )
    logger.info("exported %s to %s", args.name, target)
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from embedder.baselines.finetune import finetune
    from embedder.errors import EmbedderError, WeightsUnavailableError

    try:
        result = finetune(
            args.name,
            weights=args.weights_dir,
            catalog=args.catalog,
            split_from=args.split_from,
            model_base=args.model_base,
            epochs=args.epochs,
            input_size=args.input_size,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            version=args.version,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
        )
    except (KeyError, WeightsUnavailableError, EmbedderError) as exc:
        logger.error("cannot fine-tune %s: %s", args.name, exc)
        return 2
    head = result.metadata["head"]
    logger.info(
        "exported %s: train accuracy %.4f (balanced %.4f), %d images, %d epochs",
        result.version_dir,
        head["train_accuracy"],
        head["train_balanced_accuracy"],
        head["n_images"],
        head["epochs"],
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    import skimage.data

    from embedder.baselines import verify
    from embedder.baselines.registry import build_classifier

    images = {
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "astronaut": skimage.data.astronaut(),
        "rocket": skimage.data.rocket(),
    }
    classifier = build_classifier(args.name, args.weights_dir, cache_dir=args.cache_dir)
    result = verify.compare(args.name, args.weights_dir, list(images.values()), classifier)
    labels = verify.labels(args.weights_dir)
    for i, image_name in enumerate(images):
        logger.info(
            "%-10s keras=%-20s tflite=%-20s r=%.4f",
            image_name,
            labels[result.keras_top1[i]],
            labels[result.tflite_top1[i]],
            result.feature_corr[i],
        )
    return 0 if result.top1_matches == len(images) else 1


def main(argv: list[str] | None = None, *, configure: bool = True) -> int:
    """CLI entry point; ``configure=False`` leaves logging alone (tests, embedding callers)."""
    args = _parser().parse_args(argv)
    if configure:
        configure_logging("embedder-baselines", args.log_level, False)
    handlers = {"list": _list, "export": _export, "finetune": _finetune, "verify": _verify}
    return handlers[args.command](args)
