"""Vector-search benchmark: the service over gRPC vs in-process FAISS on the same index.

For each kind: start ``python -m vector_search`` on a fresh data directory, create the index,
upsert N vectors, time single-query Search round trips, measure recall@10 against exact
search; stop the server (it writes a snapshot) and load that snapshot's FAISS index here to
time the very same index in-process. Prints a Markdown table.

    .venv/bin/python bench/bench_vector_search.py --n 100000 --dim 256
    .venv/bin/python bench/bench_vector_search.py --embeddings emb.npy   # real embeddings
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import faiss
import grpc
import numpy as np

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import Metadata, bearer_metadata
from fashionrec_testing.supervisor import Supervisor
from fashionrec_testing.system import LocalSystem
from vector_search.index.engine import DEFAULT_EF_SEARCH, DEFAULT_NPROBE

log = logging.getLogger("bench_vector_search")
CONCURRENCY = 8  # callers at once for the QPS columns
# Bench-only settings on top of the system description: no fsync, no periodic snapshot.
TUNING = {
    "VECTOR_SEARCH_LOG_LEVEL": "WARNING",
    "VECTOR_SEARCH_FSYNC": "never",
    "VECTOR_SEARCH_SNAPSHOT_INTERVAL_S": "100000",
}
KINDS = {  # label -> (kind, pca_dimension)
    "Flat": ("Flat", 0),
    "HNSW": ("HNSW", 0),
    "IVF": ("IVF", 0),
    "IVF-PQ": ("IVF-PQ", 0),
    "IVF+PCA128": ("IVF", 128),
}


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Synthetic stand-in for embeddings: 200 blobs in a 64-d subspace, decaying spectrum."""
    rng = np.random.default_rng(seed)
    latent = min(64, dim)
    basis = rng.standard_normal((latent, dim)) * np.linspace(1.0, 0.2, latent)[:, None]
    centres = rng.standard_normal((200, latent))
    z = centres[rng.integers(0, 200, n)] + 0.5 * rng.standard_normal((n, latent))
    x = z @ basis + 0.05 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def embed_catalogue(model_dir: Path, catalogue: Path, cache: Path) -> np.ndarray:
    """Real embeddings: run an exported SavedModel (contract signature) over the catalogue."""
    if cache.exists():
        return np.load(cache)
    import tensorflow as tf  # only for this option: slow to import

    model = tf.saved_model.load(str(model_dir))
    embed = model.signatures["serving_default"]
    paths = sorted(catalogue.glob("images/*/*.jpg"))
    out = []
    for s in range(0, len(paths), 128):
        batch = tf.constant([p.read_bytes() for p in paths[s : s + 128]])
        out.append(embed(images=batch)["embedding"].numpy())
        log.info("embedded %d / %d", s + len(batch), len(paths))
    x = np.concatenate(out).astype("float32")
    np.save(cache, x)
    return x


def qps(call: Callable[[int], object], n: int, threads: int = CONCURRENCY) -> float:
    """Queries per second with ``threads`` callers at once, each query ``n`` times over."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, [i % n for i in range(3 * n)]))
    return 3 * n / (time.perf_counter() - start)


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000, q))


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


@dataclass
class Searches:
    """Single-query latencies (s), the ids each query found, and QPS: service or in-process."""

    seconds: list[float]
    found: list[list[int]]
    qps: float


def fill_index(
    stub: pb_grpc.VectorSearchStub, auth: Metadata, kind: str, pca: int, x: np.ndarray
) -> float:
    """Create ``bench/x`` and upsert ``x`` in batches; the build time (s) is a table column."""
    spec = pb.IndexSpec(name="bench/x", dimension=x.shape[1], kind=kind, pca_dimension=pca)
    stub.CreateIndex(pb.CreateIndexRequest(spec=spec), metadata=auth)
    t0 = time.perf_counter()
    for s in range(0, len(x), 2000):
        items = [pb.Item(id=str(i), vector=x[i].tolist()) for i in range(s, min(s + 2000, len(x)))]
        stub.Upsert(pb.UpsertRequest(index="bench/x", items=items), timeout=600, metadata=auth)
    return time.perf_counter() - t0


def service_searches(
    stub: pb_grpc.VectorSearchStub, auth: Metadata, xq: np.ndarray, k: int
) -> Searches:
    """Search round trips one at a time (latency, recall), then ``CONCURRENCY`` at once (QPS)."""
    lat, found = [], []
    requests = [
        pb.SearchRequest(index="bench/x", query=pb.Query(vector=pb.Vector(values=q)), k=k)
        for q in xq.tolist()
    ]
    for req in requests:
        t = time.perf_counter()
        resp = stub.Search(req, timeout=10, metadata=auth)
        lat.append(time.perf_counter() - t)
        found.append([int(h.id) for h in resp.hits])
    svc_qps = qps(lambda i: stub.Search(requests[i], timeout=10, metadata=auth), len(xq))
    return Searches(lat, found, svc_qps)


def bench_service(
    system: LocalSystem, kind: str, pca: int, x: np.ndarray, xq: np.ndarray, k: int
) -> tuple[float, int, Searches]:
    """Against the running service: build seconds, its reported memory bytes, its searches."""
    auth = bearer_metadata(system.vector_search_token)
    channel = grpc.insecure_channel(
        system.address("vector-search"), options=[("grpc.max_send_message_length", 64 << 20)]
    )
    stub = pb_grpc.VectorSearchStub(channel)
    build_s = fill_index(stub, auth, kind, pca, x)
    info = stub.DescribeIndex(pb.DescribeIndexRequest(index="bench/x"), metadata=auth).info
    searches = service_searches(stub, auth, xq, k)
    channel.close()
    return build_s, info.memory_bytes, searches


def load_snapshot(snap: Path, kind: str) -> tuple[faiss.Index, faiss.VectorTransform | None]:
    """The snapshot's index and PCA transform, with the service's default search parameters."""
    index = faiss.read_index(str(snap / "base.faiss"))
    transform = None
    if (snap / "transform.faiss").exists():
        transform = faiss.read_VectorTransform(str(snap / "transform.faiss"))
    if kind == "HNSW":
        faiss.downcast_index(index.index).hnsw.efSearch = DEFAULT_EF_SEARCH
    elif kind != "Flat":
        faiss.extract_index_ivf(index).nprobe = DEFAULT_NPROBE
    return index, transform


def local_searches(
    index: faiss.Index, transform: faiss.VectorTransform | None, xq: np.ndarray, k: int
) -> Searches:
    """The same index in-process, one thread per query as in the service."""
    faiss.omp_set_num_threads(1)  # the service runs single queries on one thread too
    local, local_found = [], []
    for i in range(len(xq)):
        t = time.perf_counter()
        q = xq[i : i + 1] if transform is None else transform.apply(xq[i : i + 1])
        _, ids = index.search(q, k)
        local.append(time.perf_counter() - t)
        local_found.append(ids[0].tolist())
    xt = xq if transform is None else transform.apply(xq)
    local_qps = qps(lambda i: index.search(xt[i : i + 1], k), len(xq))
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return Searches(local, local_found, local_qps)


def bench_kind(label: str, x: np.ndarray, xq: np.ndarray, truth: np.ndarray, k: int) -> dict:
    """One table row: the service on a fresh data directory, then its snapshot in-process."""
    kind, pca = KINDS[label]
    state = Path(tempfile.mkdtemp(prefix="vsbench-"))
    # Started from the one description of the local system (port, env, token, readiness).
    system = LocalSystem.on_free_ports(
        models=state, catalog=state, state=state, tuning={"vector-search": TUNING}
    )
    data_dir = state / "vector-search"
    with Supervisor(colour=False, grace_s=300) as sup:  # time to write the snapshot
        child = system.start(sup, "vector-search")
        build_s, memory_bytes, svc = bench_service(system, kind, pca, x, xq, k)
        sup.stop(child)  # graceful (SIGTERM): writes the snapshot we load below
    snap = next(data_dir.glob("indexes/*/snap-*"))
    if not (snap / "base.faiss").exists():
        raise SystemExit(f"{label}: not trained at n={len(x)} (below its train threshold)")
    local = local_searches(*load_snapshot(snap, kind), xq, k)
    file_bytes = (snap / "base.faiss").stat().st_size
    shutil.rmtree(data_dir, ignore_errors=True)
    # labels are assigned in insertion order, so label i is item i: comparable to the truth
    return {
        "kind": label,
        "build_s": build_s,
        "svc_p50": percentile_ms(svc.seconds, 50),
        "svc_p95": percentile_ms(svc.seconds, 95),
        "local_p50": percentile_ms(local.seconds, 50),
        "local_p95": percentile_ms(local.seconds, 95),
        "recall_svc": recall(svc.found, truth),
        "recall_local": recall(local.found, truth),
        "svc_qps": svc.qps,
        "local_qps": local.qps,
        "total_mb_per_m": memory_bytes / len(x) * 1e6 / 2**20,
        "index_file_mb_per_m": file_bytes / len(x) * 1e6 / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--embeddings", type=Path, help=".npy of real embeddings (N x D)")
    parser.add_argument("--embed-model", type=Path, help="SavedModel dir: embed --catalogue")
    parser.add_argument(
        "--catalogue", type=Path, default=Path("../shared/data/fashion-product-images-small")
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.embed_model:
        cache = Path(tempfile.gettempdir()) / f"vs_emb_{args.embed_model.parent.name}.npy"
        args.embeddings = cache
        embed_catalogue(args.embed_model, args.catalogue, cache)
    if args.embeddings:
        x = np.load(args.embeddings).astype("float32")
        rng = np.random.default_rng(0)
        pick = rng.choice(len(x), min(args.queries, len(x) // 10), replace=False)
        xq = x[pick] + 0.01 * rng.standard_normal((len(pick), x.shape[1])).astype("float32")
        source = f"real embeddings {args.embeddings.name}"
    else:
        x, xq = clustered(args.n, args.dim), clustered(args.queries, args.dim, seed=1)
        source = "synthetic clustered"
    _, truth = faiss.knn(xq, x, args.k)
    log.info("%d x %d (%s), %d queries, k=%d", len(x), x.shape[1], source, len(xq), args.k)
    rows = []
    for label in args.kinds.split(","):
        rows.append(bench_kind(label, x, xq, truth, args.k))
        log.info("%s", rows[-1])
    print(f"\n{len(x)} x {x.shape[1]} ({source}), {len(xq)} single queries, k={args.k}\n")
    print(
        "| kind | build s | service p50 / p95 ms | in-process p50 / p95 ms | budget ms | "
        "recall@10 service | recall@10 FAISS alone | index file MB per 1M | service MB per 1M | "
        f"c{CONCURRENCY} QPS service / in-process (ratio) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        budget = 1.5 * r["local_p50"] + 1.0
        ok = "ok" if r["svc_p50"] <= budget else "OVER"
        print(f"| {r['kind']} | {r['build_s']:.1f} | {r['svc_p50']:.2f} / {r['svc_p95']:.2f} | "
              f"{r['local_p50']:.2f} / {r['local_p95']:.2f} | {budget:.2f} {ok} | "
              f"{r['recall_svc']:.3f} | {r['recall_local']:.3f} | "
              f"{r['index_file_mb_per_m']:.0f} | {r['total_mb_per_m']:.0f} | "
              f"{r['svc_qps']:.0f} / {r['local_qps']:.0f} "
              f"({r['svc_qps'] / r['local_qps']:.2f}x) |")  # fmt: skip


if __name__ == "__main__":
    main()
