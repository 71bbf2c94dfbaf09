"""Servables the evaluation builds itself: the colour-histogram floor and the GAN head variants.

They go to a separate model base (``var/eval/models``) and are built only when missing, so a
rerun reuses them (``--rebuild-variants`` starts over). Heads are fitted on the run's TRAIN split.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from embedder.heads.colour import colour_extractor
from embedder.heads.model import DEFAULT_HEAD, HeadConfig
from embedder.servable import export_model

logger = logging.getLogger(__name__)

COLOUR = "colour_hist"


def _name(source: str, head: str) -> str:
    return f"{'random_' if source == 'random' else ''}infogan_{head.replace('-', '_')}"


# The paper's plain map, the previous default head, the default head, and the default head on
# random weights: the control that says how much of the score training added.
GAN_VARIANTS = {
    _name(source, head): (source, head)
    for source, head in dict.fromkeys(
        [("run", "flat"), ("run", "pool5-pca"), ("run", DEFAULT_HEAD), ("random", DEFAULT_HEAD)]
    )
}


def _exists(base: Path, name: str) -> bool:
    return any(p.is_dir() and p.name.isdigit() for p in (base / name).glob("*"))


def build_variants(
    base: Path, run: Path | None, *, rebuild: bool = False, seed: int = 0
) -> list[str]:
    """Export what is missing under ``base``; returns the variant names available."""
    names = [COLOUR]
    if rebuild:
        for name in [COLOUR, *GAN_VARIANTS]:
            shutil.rmtree(base / name, ignore_errors=True)
    if not _exists(base, COLOUR):
        export_model(
            colour_extractor(64),
            input_size=64,
            model_base=base,
            name=COLOUR,
            warmup=False,
            metadata={"source": "HSV histogram, non-learned floor"},
        )
    if run is None:
        return names
    from embedder.heads.fit import export_head, gan_and_train_files

    cached: dict[str, tuple] = {}
    for name, (source, head) in GAN_VARIANTS.items():
        names.append(name)
        if _exists(base, name):
            continue
        if source not in cached:
            cached[source] = gan_and_train_files(
                str(run) if source == "run" else None, seed=seed, **_random_fit_source(run, source)
            )
        gan, train, meta = cached[source]
        logger.info("building variant %s (head %s)", name, head)
        export_head(
            gan,
            HeadConfig.parse(head),
            train,
            model_base=base,
            name=name,
            metadata=meta,
            warmup=False,
        )
    return names


def _random_fit_source(run: Path, source: str) -> dict[str, object]:
    """The random control fits its whitening on the same TRAIN split as the trained run."""
    if source == "run":
        return {}
    import json

    config = json.loads((run / "run.json").read_text())["config"]
    return {
        "catalog": config["catalog"],
        "split_from": str(run / "split.json"),
        "image_size": config["image_size"],
    }
