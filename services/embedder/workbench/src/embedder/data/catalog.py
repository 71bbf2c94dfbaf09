"""Catalogue folders: images plus an optional ``labels.csv``, and a reproducible stratified split.

``labels.csv`` (as in ``shared/data/*/labels.csv``) needs a ``path`` column relative to the folder
and ideally ``class``; other columns (``category``, ``product_title``...) are kept as metadata.
Without it, every image under the folder is used and its parent directory name is the class.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from embedder.errors import CatalogError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class Item:
    """One catalogue image: ``path`` relative to the catalogue folder."""

    path: str
    label: str
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Catalog:
    root: Path
    items: list[Item]

    def absolute(self, item: Item) -> Path:
        return self.root / item.path

    def by_path(self) -> dict[str, Item]:
        return {item.path: item for item in self.items}


def load_catalog(root: str | Path) -> Catalog:
    """Read ``root/labels.csv`` when present, else scan ``root`` for image files."""
    root = Path(root)
    if not root.is_dir():
        raise CatalogError(f"catalogue folder not found: {root}")
    labels = root / LABELS_FILE
    items = _from_labels(root, labels) if labels.is_file() else _from_scan(root)
    if not items:
        raise CatalogError(f"no images found in {root}")
    logger.info("catalogue %s: %d images, %d classes", root, len(items), len(classes(items)))
    return Catalog(root, items)


def _from_labels(root: Path, labels: Path) -> list[Item]:
    with labels.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise CatalogError(f"{labels} has no 'path' column")
        items, missing = [], 0
        for row in reader:
            if not (root / row["path"]).is_file():
                missing += 1
                continue
            label = row.get("class") or Path(row["path"]).parent.name
            items.append(Item(row["path"], label, {k: v for k, v in row.items() if v}))
    if missing:
        logger.warning("%s: %d rows point to missing files (skipped)", labels, missing)
    return items


def _from_scan(root: Path) -> list[Item]:
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [
        Item(str(p.relative_to(root)), p.parent.name if p.parent != root else "") for p in paths
    ]


def classes(items: list[Item]) -> list[str]:
    return sorted({item.label for item in items})


def stratified_split(
    items: list[Item], *, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[str]]:
    """Per-class shuffled split by a fixed seed; classes with one image stay in train."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    rng = random.Random(seed)
    by_class: dict[str, list[str]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.path):
        by_class[item.label].append(item.path)
    train: list[str] = []
    test: list[str] = []
    for label in sorted(by_class):
        paths = by_class[label]
        rng.shuffle(paths)
        n_test = int(round(len(paths) * test_fraction)) if len(paths) > 1 else 0
        n_test = min(n_test, len(paths) - 1)
        test.extend(paths[:n_test])
        train.extend(paths[n_test:])
    return {"train": sorted(train), "test": sorted(test)}


def write_split(
    path: Path, split: dict[str, list[str]], *, seed: int, test_fraction: float, catalog: Path
) -> None:
    payload = {
        "catalog": str(catalog.resolve()),
        "seed": seed,
        "test_fraction": test_fraction,
        "counts": {name: len(paths) for name, paths in split.items()},
        **split,
    }
    path.write_text(json.dumps(payload, indent=1))


def read_split(path: str | Path) -> dict[str, list[str]]:
    data = json.loads(Path(path).read_text())
    return {"train": list(data["train"]), "test": list(data["test"])}
