"""End to end: ``POST /v1/search`` through the gateway vs the same embed + search called directly.

The system comes from its one description (fashionrec_testing.system): our embedder server with
a real exported InfoGAN-family head (random weights, ``pool5-pca`` fitted on Myntra TRAIN, 384-d:
the default head's shape and cost), vector-search and the gateway (Redis cache on). The index
``shoes/infogan`` is filled with real vectors of Myntra shoe photos grown to ``--items`` with
noise (as issue 17 measured), written straight through vector-search's gRPC so that 1M items
take minutes, not hours of embedding. The rounds start once the snapshot that follows the fill
has been written (``--settle-s``); a note says when a snapshot fell in a window anyway.
Queries are distinct JPEGs of another shop (the Berg set): every request is a cache miss
(checked on the gateway's cache counter).

Per index kind and concurrency, interleaved rounds of the two paths:

* ``gateway``: ``POST /v1/search`` (JSON, ``image_b64``, ``catalogue=shoes``, k=10); its
  Server-Timing gives the stage breakdown (embed, search, total).
* ``direct``: the embedder's ``Predict`` over the API the gateway uses (``--embedder-api``:
  TF Serving gRPC, the system's default, or REST ``:predict``), then vector-search gRPC
  ``Search``, from the client.

CPU per request: the CPU time (/proc) each process used in a path's rounds divided by its
requests: gateway, embedder, vector-search, and this load generator ("client").

    .venv/bin/python bench/bench_e2e.py --items 100000 --kinds Flat,HNSW --concurrency 1,4
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import httpx
import numpy as np

from fashionrec.tfserving.v1 import tfserving_pb2 as tfs
from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import bearer_metadata
from fashionrec_testing.supervisor import Supervisor
from fashionrec_testing.system import EMBEDDER_APIS, LocalSystem
from gateway.adapters.embedder_grpc import PREDICT, predict_request, vectors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import cache_hits  # noqa: E402  (same counter, one definition)

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MYNTRA = SHARED / "fashion-product-images-small"
BERG = SHARED / "berg-shopping-shoes-bags"
INDEX = "shoes/infogan"
SPLIT = """
import sys
from embedder.data.catalog import load_catalog, stratified_split, write_split
cat = load_catalog(sys.argv[1])
from pathlib import Path
write_split(Path(sys.argv[2]), stratified_split(cat.items, test_fraction=0.2, seed=0), seed=0,
            test_fraction=0.2, catalog=cat.root)
"""
# No parameters: the service's defaults (HNSW: M 32, efConstruction 128, efSearch 128), the
# index the gateway itself creates (GATEWAY_FAISS_INDEX, default HNSW).
KIND_PARAMS: dict[str, dict[str, str]] = {"Flat": {}, "HNSW": {}}


@dataclass
class Timings:
    seconds: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process, over the rounds


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (the gateway's worker processes under GATEWAY_WORKERS)."""
    found = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            found += process_tree(int(child))
    return found


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU so far of each process (all its threads and live child processes)
    and of this one."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        out[name] = 0.0
        for member in process_tree(pid):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] += (int(fields[11]) + int(fields[12])) / tick
    own = os.times()
    out["client"] = own.user + own.system
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def shoe_photos(folder: Path, limit: int) -> list[Path]:
    import csv

    with (folder / "labels.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["category"] == "shoes"]
    return [folder / r["path"] for r in rows[:limit]]


def embed_rest(client: httpx.Client, url: str, files: list[Path]) -> np.ndarray:
    out = []
    for start in range(0, len(files), 32):
        chunk = files[start : start + 32]
        instances = [{"b64": base64.b64encode(f.read_bytes()).decode()} for f in chunk]
        reply = client.post(f"{url}/v1/models/infogan:predict", json={"instances": instances})
        reply.raise_for_status()
        out += reply.json()["predictions"]
    return np.asarray(out, dtype=np.float32)


def grown(
    base: np.ndarray, n: int, sigma: float, seed: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """Batches of ``n`` unit vectors: real vectors plus Gaussian noise (``sigma`` per unit norm)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, 2000):
        ids = np.arange(start, min(start + 2000, n))
        x = base[ids % len(base)] + rng.normal(
            0, sigma / np.sqrt(base.shape[1]), (len(ids), base.shape[1])
        )
        yield start, (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fill(system: LocalSystem, kind: str, base: np.ndarray, n: int) -> float:
    """Create ``shoes/infogan`` as ``kind`` and upsert ``n`` items with catalogue-like metadata."""
    auth = bearer_metadata(system.vector_search_token)
    opts = [("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(system.address("vector-search"), options=opts) as channel:
        stub = pb_grpc.VectorSearchStub(channel)
        spec = pb.IndexSpec(name=INDEX, dimension=base.shape[1], metric=pb.METRIC_INNER_PRODUCT,
                            kind=kind, params=KIND_PARAMS[kind])  # fmt: skip
        stub.CreateIndex(pb.CreateIndexRequest(spec=spec), metadata=auth)
        started = time.perf_counter()
        for start, x in grown(base, n, sigma=0.35):
            items = [
                pb.Item(id=f"p{start + i}", vector=v.tolist(),
                        metadata={"class": "heels", "title": f"Product {start + i}"})
                for i, v in enumerate(x)
            ]  # fmt: skip
            stub.Upsert(pb.UpsertRequest(index=INDEX, items=items), timeout=900, metadata=auth)
            print(f"\r  filled {start + len(x):,} / {n:,}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        return time.perf_counter() - started


def describe_ms(system: LocalSystem, calls: int = 300) -> tuple[float, float]:
    """p50/p99 of ``DescribeIndex`` (what the gateway reads for its cache generation) in ms."""
    auth = bearer_metadata(system.vector_search_token)
    with grpc.insecure_channel(system.address("vector-search")) as channel:
        stub = pb_grpc.VectorSearchStub(channel)
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            stub.DescribeIndex(pb.DescribeIndexRequest(index=INDEX), metadata=auth, timeout=10)
            seconds.append(time.perf_counter() - started)
    return pct(seconds, 0.5), pct(seconds, 0.99)


JSON = {"content-type": "application/json"}


async def gateway_path(client: aiohttp.ClientSession, data: bytes, out: Timings) -> None:
    body = json.dumps({"image_b64": base64.b64encode(data).decode(), "catalogue": "shoes", "k": 10})
    started = time.perf_counter()
    async with client.post("/v1/search", data=body, headers=JSON) as reply:
        await reply.read()
    elapsed = time.perf_counter() - started
    if reply.status != 200:
        out.errors += 1
        return
    out.seconds.append(elapsed)
    for part in reply.headers.get("server-timing", "").split(","):
        if ";dur=" in part:
            name, dur = part.split(";dur=")
            out.stages.setdefault(name.strip(), []).append(float(dur) / 1000)


async def direct_path(
    http: aiohttp.ClientSession | None, predict, stub, auth, data: bytes, out: Timings
) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    if http is None:  # TF Serving gRPC, as the gateway calls it
        try:
            reply = await predict(predict_request("infogan", [data]), timeout=10)
        except grpc.aio.AioRpcError:
            out.errors += 1
            return
        vector = vectors(reply.outputs["embedding"], 1)[0]
    else:
        body = json.dumps({"instances": [{"b64": base64.b64encode(data).decode()}]})
        async with http.post("/v1/models/infogan:predict", data=body, headers=JSON) as answer:
            if answer.status != 200:
                out.errors += 1
                return
            vector = (await answer.json())["predictions"][0]
    query = pb.Query(vector=pb.Vector(values=vector))
    await stub.Search(pb.SearchRequest(index=INDEX, query=query, k=10), metadata=auth, timeout=10)
    out.seconds.append(time.perf_counter() - started)


async def run_round(system: LocalSystem, path: str, uploads: list[bytes], conc: int) -> Timings:
    out = Timings()
    queue = list(uploads)
    auth = bearer_metadata(system.vector_search_token)
    # aiohttp, not httpx: the load generator shares the two cores with the services it
    # measures, and httpx spent about 1 ms more of CPU per request (0.27 against 1.3 ms).
    timeout = aiohttp.ClientTimeout(total=60)

    def session(service: str) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=conc)
        return aiohttp.ClientSession(system.url(service), connector=connector, timeout=timeout)

    async with AsyncExitStack() as stack:
        gw = await stack.enter_async_context(session("gateway"))
        channel = grpc.aio.insecure_channel(system.address("vector-search"))
        stub = pb_grpc.VectorSearchStub(await stack.enter_async_context(channel))
        rest, predict = None, None  # only the embedder API being measured is opened
        if system.embedder_api == "rest":
            rest = await stack.enter_async_context(session("embedder"))
        else:
            embedder = grpc.aio.insecure_channel(system.address("embedder"))
            predict = (await stack.enter_async_context(embedder)).unary_unary(
                PREDICT,
                request_serializer=tfs.PredictRequest.SerializeToString,
                response_deserializer=tfs.PredictResponse.FromString,
            )

        async def worker() -> None:
            while queue:
                data = queue.pop()
                if path == "gateway":
                    await gateway_path(gw, data, out)
                else:
                    await direct_path(rest, predict, stub, auth, data, out)

        await asyncio.gather(*(worker() for _ in range(conc)))
    return out


@contextmanager
def system_up(work: Path, args: argparse.Namespace) -> Iterator[tuple[LocalSystem, dict[str, int]]]:
    system = LocalSystem.on_free_ports(
        models=work / "models", catalog=MYNTRA, state=work / "state",
        tuning={"gateway": {"GATEWAY_RATE_LIMIT_PER_MINUTE": "0", "GATEWAY_LOG_LEVEL": "WARNING",
                            "GATEWAY_CACHE_PREFIX": f"bench-e2e:{os.getpid()}:{work.name}:",
                            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")}
                | ({} if args.gateway_workers is None
                   else {"GATEWAY_WORKERS": str(args.gateway_workers)})},
        embedder_api=args.embedder_api,
    )  # fmt: skip
    split = work / "split.json"
    subprocess_run([PY, "-c", SPLIT, str(MYNTRA), str(split)])
    subprocess_run([PY, "-m", "embedder", "export", "--random", "--head", "pool5-pca",
                    "--image-size", "64", "--catalog", str(MYNTRA), "--split-from", str(split),
                    "--model-base", str(system.models), "--name", "infogan"])  # fmt: skip
    log = (work / "children.log").open("w", buffering=1)  # read while running: line buffered
    with Supervisor(out=log, colour=False, grace_s=600) as sup:
        children = system.start_all(sup, ["embedder", "vector-search", "gateway"])
        yield system, {name: child.process.pid for name, child in children.items()}


def subprocess_run(cmd: list[str]) -> None:
    import subprocess

    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def snapshots_written(log: Path) -> int:
    """vector-search's "snapshot written" lines so far: was one taken during a window?"""
    with log.open(errors="replace") as f:
        return sum("snapshot written" in line for line in f)


def settle(log: Path, wait_s: float) -> int:
    """Wait (up to ``wait_s``) for the snapshot that follows the fill's last writes, so the
    rounds measure steady state; returns how many snapshots were written while waiting."""
    before = snapshots_written(log)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and snapshots_written(log) == before:
        time.sleep(1)
    return snapshots_written(log) - before


CPU_COLUMNS = ("gateway", "embedder", "vector-search", "client")
GC_METRICS = {"gateway": "/metrics", "embedder": "/monitoring/prometheus/metrics"}


def full_collections(system: LocalSystem) -> dict[str, tuple[float, float]]:
    """Full (generation 2) garbage collections so far, per service: count and seconds (from
    ``python_gc_pause_seconds``, fashionrec_common.heap; a service without it stops the run)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for name, path in GC_METRICS.items():
        text = httpx.get(system.url(name) + path, timeout=10).text
        count = seconds = 0.0
        families = {f.name: f for f in text_string_to_metric_families(text)}
        if "python_gc_pause_seconds" not in families:
            raise SystemExit(f"{name}{path} has no python_gc_pause_seconds")
        for s in families["python_gc_pause_seconds"].samples:
            if s.labels.get("generation") != "2":
                continue
            if s.name.endswith("_count"):
                count = s.value
            elif s.name.endswith("_sum"):
                seconds = s.value
        out[name] = (count, seconds)
    return out


def gc_note(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> str:
    parts = []
    for name, (count, seconds) in after.items():
        n, s = count - before[name][0], seconds - before[name][1]
        if n:
            parts.append(f"{name} {n:.0f} ({s * 1000:.0f} ms in all)")
    return f" full GCs meanwhile: {', '.join(parts)}" if parts else ""


def measure(
    system: LocalSystem,
    pids: dict[str, int],
    uploads: list[bytes],
    args: argparse.Namespace,
    log: Path,
) -> list[str]:
    """Interleaved rounds of both paths per concurrency; one table row per (path, conc.)."""
    rows = []
    per_round = len(uploads) // (2 * args.rounds * len(args.concurrency))
    chunks = iter(uploads[i : i + per_round] for i in range(0, len(uploads), per_round))
    for conc in args.concurrency:
        results = {"gateway": Timings(), "direct": Timings()}
        hits = cache_hits(system.url("gateway"))
        snaps = snapshots_written(log)
        collections = full_collections(system)
        for _ in range(args.rounds):
            for path in ("gateway", "direct"):
                cpu_before = cpu_seconds(pids)
                got = asyncio.run(run_round(system, path, next(chunks), conc))
                for name, used in cpu_seconds(pids).items():
                    spent = results[path].cpu_s.get(name, 0.0) + used - cpu_before[name]
                    results[path].cpu_s[name] = spent
                results[path].seconds += got.seconds
                results[path].errors += got.errors
                for name, vals in got.stages.items():
                    results[path].stages.setdefault(name, []).extend(vals)
        new_hits = cache_hits(system.url("gateway")) - hits
        new_snaps = snapshots_written(log) - snaps
        gcs = gc_note(collections, full_collections(system))
        for path, r in results.items():
            stages = " / ".join(f"{n} {pct(v, 0.5):.1f}" for n, v in sorted(r.stages.items()))
            note = f"{r.errors} errors" if r.errors else ""
            if path == "gateway" and new_hits:
                note += f" {new_hits:.0f} cache hits"
            if path == "gateway" and new_snaps:
                note += f" {new_snaps} snapshot(s) written meanwhile"
            if path == "gateway":
                note += gcs
            p50, p99 = pct(r.seconds, 0.5), pct(r.seconds, 0.99)
            calls = max(1, len(r.seconds) + r.errors)
            cpu = " / ".join(f"{r.cpu_s[n] / calls * 1000:.1f}" for n in CPU_COLUMNS)
            rows.append(
                f"| {path} | {conc} | {p50:.1f} | {p99:.1f} | {len(r.seconds)} "
                f"| {stages or '-'} | {cpu} | {note} |"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--kinds", default="Flat,HNSW", help="comma list of Flat, HNSW")
    parser.add_argument("--concurrency", default="1,4", help="comma list")
    parser.add_argument("--queries", type=int, default=1600, help="distinct Berg uploads in all")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per path")
    parser.add_argument("--base", type=int, default=3000, help="real Myntra shoe vectors to grow")
    parser.add_argument(
        "--settle-s", type=float, default=90.0,
        help="wait up to this long after the fill for vector-search's next snapshot (every 60 s "
        "after writes) before measuring; 0: measure at once, a snapshot may fall in a window",
    )  # fmt: skip
    parser.add_argument(
        "--embedder-api", choices=sorted(EMBEDDER_APIS), default="grpc",
        help="how the gateway (and the direct path) call the embedder: TF Serving gRPC or REST",
    )  # fmt: skip
    parser.add_argument(
        "--gateway-workers", type=int, default=None,
        help="GATEWAY_WORKERS for the gateway (default: its own default, 1; 0 = one per core)",
    )  # fmt: skip
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if not (MYNTRA / "labels.csv").is_file() or not (BERG / "labels.csv").is_file():
        raise SystemExit(f"needs {MYNTRA} and {BERG} (the shared catalogues)")
    uploads = [p.read_bytes() for p in shoe_photos(BERG, args.queries)]
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs", flush=True)
    for kind in args.kinds.split(","):
        with (
            tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp,
            system_up(Path(tmp), args) as (system, pids),
        ):
            with httpx.Client(timeout=120) as client:
                base = embed_rest(client, system.url("embedder"), shoe_photos(MYNTRA, args.base))
            fill_s = fill(system, kind, base, args.items)
            log = Path(tmp) / "children.log"
            settled = settle(log, args.settle_s) if args.settle_s else 0
            rate = args.items / fill_s
            d50, d99 = describe_ms(system)
            print(f"\n### {kind}, {args.items:,} items x {base.shape[1]}-d "
                  f"(filled in {fill_s:.0f} s, {rate:,.0f} items/s; "
                  f"DescribeIndex p50 {d50:.2f} ms, p99 {d99:.2f} ms)\n", flush=True)  # fmt: skip
            if args.settle_s:
                print(f"Waited for the fill's last snapshot: {settled} written.\n")
            print(f"Embedder called over {args.embedder_api}.\n")
            print("| path | conc. | p50 ms | p99 ms | n | gateway stages p50 ms "
                  f"| CPU ms per request ({' / '.join(CPU_COLUMNS)}) | notes |")  # fmt: skip
            print("|---|---|---|---|---|---|---|---|")
            for row in measure(system, pids, uploads, args, log):
                print(row, flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
