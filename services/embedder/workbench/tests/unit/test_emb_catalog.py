"""Catalogue loading (labels.csv or folder scan) and the reproducible stratified split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from embedder.data.catalog import Item, load_catalog, stratified_split
from embedder.data.pipeline import load_images
from embedder.errors import CatalogError

SHARED = Path(__file__).resolve().parents[5].parent / "shared" / "data"


def make_folder(root: Path, per_class: dict[str, int]) -> None:
    for label, count in per_class.items():
        (root / "images" / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("RGB", (6, 8), (i * 20 % 255, 0, 0)).save(
                root / "images" / label / f"{i}.jpg"
            )


def test_scan_uses_parent_folder_as_class(tmp_path: Path) -> None:
    make_folder(tmp_path, {"heels": 3, "flats": 2})
    catalog = load_catalog(tmp_path)
    assert Counter(item.label for item in catalog.items) == {"heels": 3, "flats": 2}


def test_labels_csv_is_used_and_missing_rows_skipped(tmp_path: Path) -> None:
    make_folder(tmp_path, {"heels": 2})
    (tmp_path / "labels.csv").write_text(
        "path,category,class,product_title\n"
        "images/heels/0.jpg,shoes,heels,Red Heel\n"
        "images/heels/1.jpg,shoes,sandals,Odd One\n"
        "images/heels/404.jpg,shoes,heels,Missing\n"
    )
    catalog = load_catalog(tmp_path)
    assert [(i.path, i.label) for i in catalog.items] == [
        ("images/heels/0.jpg", "heels"),
        ("images/heels/1.jpg", "sandals"),
    ]
    assert catalog.items[0].meta["product_title"] == "Red Heel"


def test_empty_or_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        load_catalog(tmp_path)
    with pytest.raises(CatalogError):
        load_catalog(tmp_path / "nope")


def test_split_is_stratified_disjoint_and_reproducible() -> None:
    items = [
        Item(f"{c}/{i}.jpg", c) for c, n in {"a": 50, "b": 10, "solo": 1}.items() for i in range(n)
    ]
    split = stratified_split(items, test_fraction=0.2, seed=3)
    assert split == stratified_split(list(reversed(items)), test_fraction=0.2, seed=3)
    assert split != stratified_split(items, test_fraction=0.2, seed=4)
    assert not set(split["train"]) & set(split["test"])
    assert len(split["train"]) + len(split["test"]) == len(items)
    test_counts = Counter(p.split("/")[0] for p in split["test"])
    assert test_counts == {"a": 10, "b": 2}  # the single-image class stays in train


def test_pipeline_skips_corrupt_files(tmp_path: Path) -> None:
    make_folder(tmp_path, {"x": 3})
    bad = tmp_path / "images" / "x" / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    paths = sorted((tmp_path / "images" / "x").glob("*.jpg"))
    images, loader = load_images(paths, size=8)
    batch = list(images.as_numpy_iterator())
    assert len(batch) == 3 and batch[0].shape == (8, 8, 3)
    assert list(loader.skipped) == [str(bad)]


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data is absent (shared catalogue photos)"
)
def test_shared_catalogue_loads_with_labels() -> None:
    catalog = load_catalog(SHARED / "fashion-product-images-small")
    labels = Counter(item.label for item in catalog.items)
    assert len(catalog.items) == 12_231
    assert labels["casual_shoes"] == 2_844 and labels["handbags"] == 1_755
