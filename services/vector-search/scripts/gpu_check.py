"""GPU check for vector-search: build and search GPU indexes, compare with exact CPU search.

Run on a machine with faiss-gpu (not part of the test suite):

    python services/vector-search/scripts/gpu_check.py [--n 100000 --dim 256]

Prints a small table; exits 0 when every check passes, 1 when one fails, 2 when no GPU.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import faiss
import numpy as np

log = logging.getLogger("gpu_check")


def data(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((100, dim)).astype("float32")
    x = centres[rng.integers(0, 100, n)] + 0.5 * rng.standard_normal((n, dim)).astype("float32")
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    rows = zip(found, truth, strict=True)
    return sum(len(set(f.tolist()) & set(t.tolist())) for f, t in rows) / truth.size


def service_engine_check(x: np.ndarray, xq: np.ndarray, truth: np.ndarray) -> tuple[bool, float]:
    """The service's own index class with use_gpu=True: must place a GPU replica and agree."""
    try:
        from vector_search.index.collection import Collection
        from vector_search.index.spec import IndexSpec, SearchOptions
    except ImportError:
        return True, float("nan")  # package not installed on this box: the faiss checks suffice
    coll = Collection(IndexSpec("gpu/check", x.shape[1], kind="Flat"), use_gpu=True)
    coll.apply_upsert(1, [str(i) for i in range(len(x))], x, [{}] * len(x))
    hits = coll.search(xq, SearchOptions(k=10), [None] * len(xq))
    found = np.array([[int(h.id) for h in row] for row in hits])
    on_gpu = coll.engine._gpu is not None
    return on_gpu, recall(found, truth)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    ngpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    log.info(f"faiss {faiss.__version__}, GPUs visible: {ngpu}")
    if ngpu == 0 or not hasattr(faiss, "StandardGpuResources"):
        log.info("FAIL: no GPU (or a CPU-only faiss build)")
        return 2
    x, xq = data(args.n, args.dim, 0), data(args.queries, args.dim, 1)
    _, truth = faiss.knn(xq, x, 10)
    res = faiss.StandardGpuResources()
    rows, ok = [], True
    for desc, min_recall in (("Flat", 0.999), ("IVF1024,Flat", 0.9), ("IVF1024,PQ32", 0.5)):
        t0 = time.perf_counter()
        cpu = faiss.index_factory(args.dim, desc)
        gpu = faiss.index_cpu_to_gpu(res, 0, cpu)
        gpu.train(x)
        gpu.add(x)
        build = time.perf_counter() - t0
        if desc != "Flat":
            faiss.GpuParameterSpace().set_index_parameter(gpu, "nprobe", 64)
        gpu.search(xq[:10], 10)  # warm-up
        t0 = time.perf_counter()
        _, found = gpu.search(xq, 10)
        per_query_us = (time.perf_counter() - t0) / len(xq) * 1e6
        r = recall(found, truth)
        passed = r >= min_recall
        ok &= passed
        rows.append(
            (desc, f"{build:.2f}", f"{per_query_us:.1f}", f"{r:.3f}", "ok" if passed else "FAIL")
        )
    on_gpu, r = service_engine_check(x[:20_000], xq[:200], faiss.knn(xq[:200], x[:20_000], 10)[1])
    passed = on_gpu and (np.isnan(r) or r >= 0.999)
    ok &= passed
    rows.append(("service Engine use_gpu", "-", "-", f"{r:.3f}", "ok" if passed else "FAIL"))
    log.info(f"{'index':<24}{'build s':>9}{'us/query':>10}{'recall@10':>11}  result")
    for row in rows:
        log.info(f"{row[0]:<24}{row[1]:>9}{row[2]:>10}{row[3]:>11}  {row[4]}")
    log.info("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
