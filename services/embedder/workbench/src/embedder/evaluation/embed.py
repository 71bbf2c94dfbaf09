"""Embedding through the exported servables (bytes in), an on-disk cache, and latency.

The cache key is the servable's saved_model.pb digest plus a digest of the catalogue's file list
(paths and sizes), so a re-exported model or a changed catalogue is never served stale vectors.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

logger = logging.getLogger(__name__)


def catalogue_digest(files: list[Path]) -> str:
    digest = hashlib.sha1()
    for path in files:
        digest.update(f"{path}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def model_digest(version_dir: Path) -> str:
    return hashlib.sha1((version_dir / "saved_model.pb").read_bytes()).hexdigest()[:16]


def load_signature(version_dir: Path):  # type: ignore[no-untyped-def]
    return tf.saved_model.load(str(version_dir)).signatures["serving_default"]


def embed(
    version_dir: Path,
    files: list[Path],
    *,
    batch_size: int = 64,
    cache_dir: Path | None = None,
    progress: bool = True,
    label: str = "",
) -> tuple[np.ndarray, float, bool]:
    """Vectors for ``files`` (in order), seconds spent, and whether they came from the cache."""
    cache = None
    if cache_dir is not None:
        key = f"{version_dir.parent.name}-{model_digest(version_dir)}-{catalogue_digest(files)}"
        cache = cache_dir / f"{key}.npy"
        if cache.is_file():
            timing = cache.with_suffix(".seconds")
            seconds = float(timing.read_text()) if timing.is_file() else 0.0
            return np.load(cache), seconds, True
    fn = load_signature(version_dir)
    out = []
    started = time.perf_counter()
    bar = tqdm(total=len(files), desc=f"embed {label}", unit="img", disable=not progress)
    for start in range(0, len(files), batch_size):
        chunk = [f.read_bytes() for f in files[start : start + batch_size]]
        out.append(fn(images=tf.constant(chunk))["embedding"].numpy())
        bar.update(len(chunk))
    bar.close()
    vectors = np.concatenate(out).astype(np.float32)
    seconds = time.perf_counter() - started
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(cache)
        cache.with_suffix(".seconds").write_text(f"{seconds:.3f}")
    return vectors, seconds, False


def latency(
    version_dir: Path, files: list[Path], *, samples: int = 50, batch: int = 32, rounds: int = 3
) -> dict[str, float]:
    """Batch-1 latency p50/p95 (ms) over ``samples`` images and batch-``batch`` throughput."""
    fn = load_signature(version_dir)
    data = [f.read_bytes() for f in files[: max(samples, batch)]]
    fn(images=tf.constant(data[:1]))  # warm-up (tracing, allocation)
    fn(images=tf.constant(data[:batch]))
    times = []
    for blob in data[:samples]:
        started = time.perf_counter()
        fn(images=tf.constant([blob]))["embedding"].numpy()
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(rounds):
        fn(images=tf.constant(data[:batch]))["embedding"].numpy()
    elapsed = time.perf_counter() - started
    ms = np.asarray(times) * 1000.0
    return {
        "batch1_p50_ms": float(np.percentile(ms, 50)),
        "batch1_p95_ms": float(np.percentile(ms, 95)),
        f"batch{batch}_images_per_s": float(rounds * batch / elapsed),
        "samples": len(times),
    }
