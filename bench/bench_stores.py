"""Vector stores: the FAISS service vs Milvus Lite vs in-process FAISS, on the same vectors.

One run, one data set. The FAISS service (``python -m vector_search``, started from the system
description) and Milvus Lite (a local file URI) are reached through the gateway's own
adapters (VectorSearchClient, MilvusStore), so the numbers are what the
gateway sees; in-process FAISS is an ``IndexHNSWFlat`` (inner product) built here. Each store
ingests all N items in batches (items/s), then every round measures each store in turn
(order rotated per round): single-caller latency over the queries (p50, p99), QPS with 8
concurrent callers, and recall@10 against exact inner-product search. Medians over rounds.

    nice -n 10 .venv/bin/python bench/bench_stores.py                  # 100k synthetic
    nice -n 10 .venv/bin/python bench/bench_stores.py --n 1000000 --max-ingest-seconds 900
    nice -n 10 .venv/bin/python bench/bench_stores.py --embeddings emb.npy
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import grpc
import numpy as np
from bench_vector_search import clustered  # the same synthetic vectors as that bench

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import bearer_metadata
from fashionrec_testing.supervisor import Child, Supervisor
from fashionrec_testing.system import LocalSystem
from gateway.adapters.milvus_store import HnswParams, IvfFlatParams, MilvusStore
from gateway.adapters.resilience import CallPolicy
from gateway.adapters.vector_search import VectorSearchClient
from gateway.domain.types import StoredItem, VectorQuery

log = logging.getLogger("bench_stores")
INDEX = "bench/stores"
CONCURRENCY = 8
TUNING = {  # bench-only service settings: no fsync, no periodic snapshot during the run
    "VECTOR_SEARCH_LOG_LEVEL": "WARNING",
    "VECTOR_SEARCH_FSYNC": "never",
    "VECTOR_SEARCH_SNAPSHOT_INTERVAL_S": "100000",
}
CATEGORIES = ("Apparel", "Accessories", "Footwear", "Personal Care", "Free Items")
CLASSES = tuple(f"class-{i:02d}" for i in range(40))
Search = Callable[[np.ndarray], Awaitable[list[int]]]


def normalised(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def dataset(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """Catalogue vectors and held-out queries (data points not in the catalogue, perturbed)."""
    if args.embeddings:
        allx = normalised(np.load(args.embeddings).astype("float32"))
        source = f"real embeddings {args.embeddings.name}"
    else:
        allx = clustered(args.n + args.queries, args.dim)
        source = "synthetic clustered (200 blobs, 64-d subspace)"
    rng = np.random.default_rng(1)
    held = rng.choice(len(allx), args.queries, replace=False)
    keep = np.setdiff1d(np.arange(len(allx)), held)[: args.n]
    noise = 0.02 * rng.standard_normal((args.queries, allx.shape[1]))
    return np.ascontiguousarray(allx[keep]), normalised(allx[held] + noise), source


def metadata(n: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(2)
    cats, classes = rng.integers(0, len(CATEGORIES), n), rng.integers(0, len(CLASSES), n)
    return [
        {"category": CATEGORIES[a], "class": CLASSES[b]}
        for a, b in zip(cats.tolist(), classes.tolist(), strict=True)
    ]


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from /proc (psutil is not a dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def own_rss_settled() -> int:
    """This process's RSS after glibc hands freed heap back (less ingest garbage)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_bytes()


@dataclass
class Store:
    name: str
    params: str
    search: Search = field(repr=False)
    search_sync: Callable[[np.ndarray], object] | None = field(default=None, repr=False)
    n: int = 0
    ingest_s: float = 0.0
    memory: int = 0
    memory_note: str = ""
    server: tuple[int, str, str] | None = None  # a service's (pid, address, token)
    index: faiss.Index | None = field(default=None, repr=False)  # in-process FAISS's own
    c1: list[tuple[float, float]] = field(default_factory=list)  # (p50, p99) s per round
    qps: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)


async def ingest(
    name: str,
    add: Callable[[int, int], Awaitable[None]],
    n: int,
    batch: int,
    max_s: float,
) -> tuple[int, float]:
    """Adds [0, n) in batches until done or ``max_s`` passed; returns (items, seconds)."""
    t0 = time.perf_counter()
    done = 0
    while done < n and time.perf_counter() - t0 < max_s:
        end = min(done + batch, n)
        await add(done, end)
        done = end
        if done % (batch * 50) == 0:
            rate = done / (time.perf_counter() - t0)
            log.info("%s: %d / %d items (%.0f/s)", name, done, n, rate)
    return done, time.perf_counter() - t0


def items(x: np.ndarray, meta: list[dict[str, str]], start: int, end: int) -> list[StoredItem]:
    return [
        StoredItem(str(i), meta[i], v)
        for i, v in zip(range(start, end), x[start:end].tolist(), strict=True)
    ]


@contextlib.asynccontextmanager
async def faiss_service(
    args: argparse.Namespace, x: np.ndarray, meta: list[dict[str, str]], root: Path
) -> AsyncIterator[Store]:
    system = LocalSystem.on_free_ports(
        models=root, catalog=root, state=root / "svc", tuning={"vector-search": TUNING}
    )
    params = {"M": args.m, "ef_construction": args.ef_construction, "ef_search": args.ef_search}
    if args.service_kind != "HNSW":
        params = {"nlist": args.nlist, "nprobe": args.nprobe} if "IVF" in args.service_kind else {}
    with Supervisor(colour=False, grace_s=5) as sup:
        child: Child = system.start(sup, "vector-search")
        # The adapter's ensure_index always asks for Flat: create the benchmarked kind here.
        with grpc.insecure_channel(system.address("vector-search")) as channel:
            spec = pb.IndexSpec(
                name=INDEX,
                dimension=x.shape[1],
                metric=pb.METRIC_INNER_PRODUCT,
                kind=args.service_kind,
                params={k: str(v) for k, v in params.items()},
            )
            pb_grpc.VectorSearchStub(channel).CreateIndex(
                pb.CreateIndexRequest(spec=spec),
                metadata=bearer_metadata(system.vector_search_token),
            )
        client = VectorSearchClient(
            system.address("vector-search"),
            policy=CallPolicy(timeout_s=300),
            token=system.vector_search_token,
        )

        async def add(start: int, end: int) -> None:
            await client.upsert(INDEX, items(x, meta, start, end))

        async def search(q: np.ndarray) -> list[int]:
            out = await client.search(INDEX, VectorQuery(q.tolist(), args.k))
            return [int(h.id) for h in out.hits]

        label = f"{args.service_kind} " + " ".join(f"{k}={v}" for k, v in params.items())
        store = Store("FAISS service (gRPC)", label, search)
        store.server = (
            child.process.pid,
            system.address("vector-search"),
            system.vector_search_token,
        )
        base = rss_bytes(child.process.pid)
        store.n, store.ingest_s = await ingest(
            store.name, add, len(x), args.batch, args.max_ingest_seconds
        )
        total = rss_bytes(child.process.pid)
        store.memory = total - base
        store.memory_note = (
            f"server RSS growth (server RSS {total / 2**20:,.0f} MB, {base / 2**20:.0f} empty)"
        )
        try:
            yield store
        finally:
            await client.close()


@contextlib.asynccontextmanager
async def milvus_lite(
    args: argparse.Namespace, x: np.ndarray, meta: list[dict[str, str]], root: Path
) -> AsyncIterator[Store]:
    index: HnswParams | IvfFlatParams
    if args.milvus_kind == "HNSW":
        index = HnswParams(m=args.m, ef_construction=args.ef_construction, ef=args.ef_search)
    else:
        index = IvfFlatParams(nlist=args.nlist, nprobe=args.nprobe)
    base = own_rss_settled()
    client = MilvusStore(str(root / "milvus.db"), index=index, timeout_s=300)
    await client.ensure_index(INDEX, x.shape[1])

    async def add(start: int, end: int) -> None:
        await client.upsert(INDEX, items(x, meta, start, end))

    async def search(q: np.ndarray) -> list[int]:
        out = await client.search(INDEX, VectorQuery(q.tolist(), args.k))
        return [int(h.id) for h in out.hits]

    params = index.build() | index.search(args.k, widen=False)["params"]
    label = f"{args.milvus_kind} " + " ".join(f"{k}={v}" for k, v in params.items())
    store = Store("Milvus Lite (file URI)", label, search)
    store.n, store.ingest_s = await ingest(
        store.name, add, len(x), args.batch, args.max_ingest_seconds
    )
    # Seal the last memtable rows into a segment and wait for Milvus Lite's background
    # compaction and HNSW builds: until then searches brute-force the unindexed rows.
    t0 = time.perf_counter()
    coll = client._name(INDEX)  # the adapter has no flush: reach its pymilvus client
    await asyncio.to_thread(lambda: client._connect().flush(coll))
    await asyncio.to_thread(milvus_lite_drain, root / "milvus.db", coll)
    log.info("%s: flush + index build %.1f s", store.name, time.perf_counter() - t0)
    store.ingest_s += time.perf_counter() - t0
    store.memory = own_rss_settled() - base
    store.memory_note = "RSS growth of this process (Milvus Lite 3 runs in-process)"
    try:
        yield store
    finally:
        await client.close()


def milvus_lite_drain(path: Path, coll: str) -> None:
    """Blocks until Milvus Lite's background index builds are done (private API, 3.x)."""
    from milvus_lite.server_manager import server_manager_instance

    _, db, _ = server_manager_instance._servers[str(path.resolve())]
    db.get_collection(coll)._wait_for_bg()


def faiss_index(args: argparse.Namespace, x: np.ndarray) -> tuple[faiss.Index, str]:
    dim, ip = x.shape[1], faiss.METRIC_INNER_PRODUCT
    if args.faiss_kind == "HNSW":
        index = faiss.IndexHNSWFlat(dim, args.m, ip)
        index.hnsw.efConstruction = args.ef_construction
        index.hnsw.efSearch = args.ef_search
        label = f"M={args.m} efConstruction={args.ef_construction} efSearch={args.ef_search}"
        return index, label
    if args.faiss_kind == "IVF":
        index = faiss.index_factory(dim, f"IVF{args.nlist},Flat", ip)
        index.train(x[: max(50 * args.nlist, 100_000)])
        index.nprobe = args.nprobe
        return index, f"nlist={args.nlist} nprobe={args.nprobe}"
    return faiss.IndexFlatIP(dim), ""


@contextlib.asynccontextmanager
async def faiss_in_process(
    args: argparse.Namespace, x: np.ndarray, meta: list[dict[str, str]], root: Path
) -> AsyncIterator[Store]:
    base = own_rss_settled()
    index, label = faiss_index(args, x)

    async def add(start: int, end: int) -> None:
        index.add(x[start:end])  # all cores for the build, as the service's writer has

    async def search(q: np.ndarray) -> list[int]:
        _, ids = index.search(q[None, :], args.k)
        return ids[0].tolist()

    store = Store("FAISS in-process", f"{args.faiss_kind} {label}", search)
    store.n, store.ingest_s = await ingest(
        store.name, add, len(x), args.batch, args.max_ingest_seconds
    )
    store.memory = own_rss_settled() - base
    store.memory_note = "RSS growth of this process"
    store.search_sync = lambda q: index.search(q[None, :], args.k)
    store.index = index
    yield store


async def c1_latency(store: Store, xq: np.ndarray) -> tuple[float, float, list[list[int]]]:
    for q in xq[:10]:  # warm-up
        await store.search(q)
    lat, found = [], []
    for q in xq:
        t = time.perf_counter()
        found.append(await store.search(q))
        lat.append(time.perf_counter() - t)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), found


async def c8_qps(store: Store, xq: np.ndarray, passes: int) -> float:
    """8 callers at once: asyncio tasks for the async adapters, threads for in-process."""
    order = [i % len(xq) for i in range(passes * len(xq))]
    start = time.perf_counter()
    sync = store.search_sync
    if sync is not None:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda i: sync(xq[i]), order))
    else:

        async def worker(w: int) -> None:
            for i in order[w::CONCURRENCY]:
                await store.search(xq[i])

        await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    return len(order) / (time.perf_counter() - start)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


async def run(args: argparse.Namespace) -> None:
    x, xq, source = dataset(args)
    meta = metadata(len(x))
    log.info("%d x %d (%s), %d held-out queries", len(x), x.shape[1], source, len(xq))
    truths: dict[int, np.ndarray] = {}
    root = Path(tempfile.mkdtemp(prefix="storebench-"))
    makers = {"service": faiss_service, "milvus": milvus_lite, "faiss": faiss_in_process}
    stores: list[Store] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            for key in args.stores.split(","):
                faiss.omp_set_num_threads(os.cpu_count() or 1)
                stores.append(await stack.enter_async_context(makers[key](args, x, meta, root)))
                s = stores[-1]
                log.info("%s: %d items in %.1f s", s.name, s.n, s.ingest_s)
            for n in {s.n for s in stores}:  # exact truth for the N each store reached
                truths[n] = faiss.knn(xq, x[:n], args.k, metric=faiss.METRIC_INNER_PRODUCT)[1]
            faiss.omp_set_num_threads(1)  # single-query searches on one thread, like the service
            for r in range(args.rounds):
                for s in stores[r % len(stores) :] + stores[: r % len(stores)]:
                    p50, p99, found = await c1_latency(s, xq)
                    s.c1.append((p50, p99))
                    s.recall.append(recall(found, truths[s.n]))
                    s.qps.append(await c8_qps(s, xq, args.c8_passes))
                    log.info("round %d %s: p50 %.2f ms, qps %.0f, recall %.3f",
                             r + 1, s.name, p50 * 1e3, s.qps[-1], s.recall[-1])  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(args, stores, len(x), x.shape[1], len(xq), source)


def print_table(
    args: argparse.Namespace, stores: list[Store], n: int, dim: int, nq: int, source: str
) -> None:
    med = statistics.median
    print(
        f"\n{n:,} x {dim} ({source}), {nq} held-out queries, k={args.k}, inner product; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
        f"{args.rounds} interleaved rounds (medians), ingest batches of {args.batch}, "
        f"c{CONCURRENCY} = {args.c8_passes} x {nq} queries\n"
    )
    print(
        "| store | index | N | ingest items/s | c1 p50 / p99 ms | c8 QPS | recall@10 | "
        "memory MB | bytes/item | memory measured as |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in stores:
        p50 = med(p for p, _ in s.c1) * 1e3
        p99 = med(p for _, p in s.c1) * 1e3
        reached = f"{s.n:,}" if s.n == n else f"{s.n:,} of {n:,} (time limit)"
        print(
            f"| {s.name} | {s.params} | {reached} | {s.n / s.ingest_s:,.0f} | "
            f"{p50:.2f} / {p99:.2f} | {med(s.qps):,.0f} | {med(s.recall):.3f} | "
            f"{s.memory / 2**20:,.0f} | {s.memory / max(s.n, 1):,.0f} | {s.memory_note} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--n", type=int, default=100_000, help="catalogue size (default 100000)")
    add("--dim", type=int, default=384, help="synthetic dimension (default 384)")
    add("--queries", type=int, default=300, help="held-out queries (default 300)")
    add("--k", type=int, default=10)
    add("--embeddings", type=Path, help=".npy of real embeddings (rows: items), not synthetic")
    add("--stores", default="service,milvus,faiss", help="subset/order of service,milvus,faiss")
    add("--rounds", type=int, default=3, help="interleaved measurement rounds (default 3)")
    add("--batch", type=int, default=1000, help="items per upsert (default 1000)")
    add("--c8-passes", type=int, default=2, help="passes over the queries for c8 QPS")
    add("--max-ingest-seconds", type=float, default=float("inf"),
        help="stop each store's ingest after this long (truth: the N it reached)")  # fmt: skip
    add("--service-kind", default="HNSW", help="HNSW (default), Flat, IVF, IVF-PQ")
    add("--milvus-kind", default="HNSW", choices=("HNSW", "IVF_FLAT"))
    add("--faiss-kind", default="HNSW", choices=("HNSW", "Flat", "IVF"))
    add("--m", type=int, default=32, help="HNSW M (service default 32, Milvus adapter 16)")
    add("--ef-construction", type=int, default=128,
        help="HNSW efConstruction (service default 128, Milvus adapter 200)")  # fmt: skip
    add("--ef-search", type=int, default=64,
        help="HNSW efSearch / Milvus ef (service default 128, Milvus adapter 64)")  # fmt: skip
    add("--nlist", type=int, default=1024, help="IVF kinds")
    add("--nprobe", type=int, default=32, help="IVF kinds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # Milvus Lite's in-process gRPC server logs pymilvus' unimplemented AllocTimestamp call.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
