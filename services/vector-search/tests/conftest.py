"""Shared helpers for the vector-search tests (tiny random vectors only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vector_search.index.managed import IndexOptions, ManagedIndex, write_spec
from vector_search.index.spec import IndexSpec


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 20) -> np.ndarray:
    """Gaussian blobs, L2-normalised: closer to real embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype("float32")
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim)).astype(
        "float32"
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


@pytest.fixture
def blobs():  # type: ignore[no-untyped-def]
    """The ``clustered`` generator, as a fixture (importlib mode cannot import conftest)."""
    return clustered


@pytest.fixture
def make_index(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory for an opened ManagedIndex in a temporary directory."""

    def make(spec: IndexSpec, sub: str = "idx", fsync: str = "never") -> ManagedIndex:
        directory = tmp_path / sub
        if not (directory / "spec.json").exists():
            directory.mkdir(parents=True, exist_ok=True)
            write_spec(directory, spec)
        index = ManagedIndex(directory, spec, IndexOptions(fsync=fsync))
        index.open()
        return index

    return make
