"""Where vector-search's QPS at concurrency 8 goes: FAISS, the Python client, or Python gRPC.

Issue 17 asks the service's HNSW QPS with 8 concurrent callers to reach 0.6x of in-process
FAISS. bench_stores.py measures it with the gateway's own (Python) client on the same cores,
so the client's CPU counts against the service. This bench separates the parts, on the same
index, interleaved over rounds:

- in-process FAISS: 8 threads calling ``index.search`` (one query each, one OpenMP thread);
- the service through the gateway's Python adapter (what bench_stores.py reports);
- the service driven by ``vs_loadgen`` (C++ gRPC, bench/loadgen/): the client's cost is
  tens of microseconds per call, so this is the service's own ceiling on these cores;
- an empty Search handler on the service's own gRPC stack (``build_server`` with the bearer
  token interceptor, grpc.aio) driven by the same load generator: the floor of a Python gRPC
  server on this machine, with no search at all;
- ``vs_native`` (bench/loadgen/vs_native.cc): Search answered by a C++ gRPC server that
  searches the same index (written by in-process FAISS, read by the faiss-cpu wheel's own
  libfaiss.so) with no Python; the same binary with ``--empty`` (the floor of a C++ gRPC
  server) and ``--inprocess`` (that libfaiss searched from 8 C++ threads, no gRPC). These
  rows say what a native Search front would reach before one is built into the service.

For every row it prints QPS, the ratio to in-process FAISS and the CPU milliseconds per
query of the process that answers (server rows: the server process; in-process: this one).

    .venv/bin/python bench/bench_vs_rpc.py                 # 100k synthetic 384-d, 3 rounds
    .venv/bin/python bench/bench_vs_rpc.py --n 1000000 --rounds 2

Needs gRPC C++ to build the load generator (bench/loadgen/build.sh says which packages).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
from bench_stores import c8_qps, dataset, faiss_in_process, faiss_service, metadata

from fashionrec_testing.supervisor import Supervisor, free_port, tcp_open

HERE = Path(__file__).resolve().parent
LOADGEN = HERE.parent / "var" / "loadgen" / "vs_loadgen"
NATIVE = HERE.parent / "var" / "loadgen" / "vs_native"
EMPTY_TOKEN = "bench-empty-token"
log = logging.getLogger("bench_vs_rpc")


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_loadgen() -> Path:
    done = subprocess.run(["bash", str(HERE / "loadgen" / "build.sh")], check=False)  # noqa: S603, S607
    if done.returncode != 0:
        sys.exit(f"could not build {LOADGEN} (exit {done.returncode}); see the message above")
    return LOADGEN


def loadgen(
    target: str, token: str, queries: Path, dim: int, requests: int, warmup: int
) -> dict[str, float]:
    cmd = [str(LOADGEN), "--target", target, "--index", "bench/stores", "--token", token,
           "--queries", str(queries), "--dim", str(dim), "--concurrency", "8",
           "--requests", str(requests), "--warmup", str(warmup)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"vs_loadgen failed: {done.stdout} {done.stderr}")
    return json.loads(done.stdout)


def serve_empty(port: int) -> None:
    """Child mode: the service's gRPC stack with a Search that returns 10 fixed hits."""
    from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
    from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
    from fashionrec_common.grpc_auth import token_auth
    from fashionrec_common.grpc_server import build_server

    reply = pb.SearchResponse(
        hits=[pb.Hit(id=str(i), distance=0.5, score=0.75) for i in range(10)], generation=1
    )

    class Empty(pb_grpc.VectorSearchServicer):
        async def Search(self, request: pb.SearchRequest, context: object) -> pb.SearchResponse:
            return reply

    async def main() -> None:
        server, _ = build_server(["fashionrec.vectorsearch.v1.VectorSearch"],
                                 token_auth([EMPTY_TOKEN], "empty"))  # fmt: skip
        pb_grpc.add_VectorSearchServicer_to_server(Empty(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def child_server(
    sup: Supervisor, name: str, argv: Callable[[int], list[str]]
) -> tuple[int, str, str]:
    """(pid, address, token) of a Search server started by ``sup`` on a free port (``argv``
    gets the port), once it accepts connections; ``sup`` stops it."""
    port = free_port()
    child = sup.start(name, argv(port))
    sup.wait_until(child, lambda: tcp_open("127.0.0.1", port), timeout_s=600)
    return child.process.pid, f"127.0.0.1:{port}", EMPTY_TOKEN


def native_in_process(
    index_file: Path, queries: Path, dim: int, requests: int
) -> tuple[float, float]:
    """(QPS, CPU ms per query) of the wheel's libfaiss searched from 8 C++ threads."""
    cmd = [str(NATIVE), "--inprocess", "--index-file", str(index_file), "--queries", str(queries),
           "--dim", str(dim), "--requests", str(requests)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)  # noqa: S603
    out = json.loads(done.stdout)
    return out["qps"], out["cpu_s"] / requests * 1e3


def native_servers(
    sup: Supervisor, index: faiss.Index, index_file: Path
) -> list[tuple[str, tuple[int, str, str]]]:
    """The vs_native rows' servers (searching ``index``, written to ``index_file``), or none
    when vs_native could not be built."""
    if not NATIVE.exists():
        log.warning("%s not built: no native rows (bench/loadgen/build.sh says why)", NATIVE)
        return []
    faiss.write_index(index, str(index_file))
    metric = "IP" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "L2"
    searching = ["--index-file", str(index_file), "--dim", str(index.d), "--metric", metric]

    def native(*extra: str) -> Callable[[int], list[str]]:
        return lambda port: [str(NATIVE), "--serve", "--port", str(port),
                             "--token", EMPTY_TOKEN, *extra]  # fmt: skip

    return [
        ("native Search (C++ gRPC + the wheel's libfaiss), C++ load generator",
         child_server(sup, "native", native(*searching))),
        ("empty C++ gRPC server, C++ load generator",
         child_server(sup, "native-empty", native("--empty"))),
    ]  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    """{row: [(qps, cpu ms per query), ...per round]}."""
    x, xq, _ = dataset(args)
    root = Path(tempfile.mkdtemp(prefix="vsrpc-"))
    queries = root / "queries.f32"
    xq.astype("float32").tofile(queries)
    rows: dict[str, list[tuple[float, float]]] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            svc = await stack.enter_async_context(faiss_service(args, x, metadata(len(x)), root))
            local = await stack.enter_async_context(faiss_in_process(args, x, [], root))
            sup = stack.enter_context(Supervisor(colour=False, grace_s=5))
            empty = child_server(
                sup, "empty", lambda port: [sys.executable, __file__, "--serve-empty", str(port)]
            )
            servers = [
                ("service, C++ load generator", svc.server),
                ("empty Python gRPC handler, C++ load generator", empty),
            ]
            index_file = root / "hnsw.faiss"
            servers += native_servers(sup, local.index, index_file)
            faiss.omp_set_num_threads(1)
            pid, _, _ = svc.server  # type: ignore[misc]
            passes = max(1, args.requests // len(xq))
            n, warmup = passes * len(xq), args.requests // 10
            for r in range(args.rounds):
                t0 = time.process_time()
                qps = await c8_qps(local, xq, passes)
                rows.setdefault("FAISS in-process (8 threads)", []).append(
                    (qps, (time.process_time() - t0) / n * 1e3)
                )
                c0 = cpu_seconds(pid)
                qps = await c8_qps(svc, xq, passes)
                rows.setdefault("service, Python client (gateway adapter)", []).append(
                    (qps, (cpu_seconds(pid) - c0) / n * 1e3)
                )
                if NATIVE.exists():
                    rows.setdefault(
                        "FAISS in-process from C++ (8 threads, same libfaiss)", []
                    ).append(native_in_process(index_file, queries, x.shape[1], args.requests))
                for name, (p, t, tok) in servers:
                    c0 = cpu_seconds(p)
                    out = loadgen(t, tok, queries, x.shape[1], args.requests, warmup)
                    calls = args.requests + warmup  # the server's CPU covers the warm-up too
                    rows.setdefault(name, []).append(
                        (out["qps"], (cpu_seconds(p) - c0) / calls * 1e3)
                    )
                log.info("round %d: %s", r + 1, {k: round(v[-1][0]) for k, v in rows.items()})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def print_table(args: argparse.Namespace, rows: dict[str, list[tuple[float, float]]]) -> None:
    med = statistics.median
    base = med(q for q, _ in rows["FAISS in-process (8 threads)"])
    print(
        f"\n{args.n:,} x {args.dim} synthetic, HNSW M={args.m} efConstruction="
        f"{args.ef_construction} efSearch={args.ef_search}, k={args.k}, concurrency 8, "
        f"{args.requests} queries per row and round, {args.rounds} interleaved rounds "
        f"(medians); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| path | c8 QPS | vs in-process | CPU ms per query (answering process) |")
    print("|---|---|---|---|")
    for name, vals in rows.items():
        qps = med(q for q, _ in vals)
        print(f"| {name} | {qps:,.0f} | {qps / base:.2f}x | {med(c for _, c in vals):.2f} |")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-empty":
        serve_empty(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--n", type=int, default=100_000, help="items (default 100000)")
    add("--dim", type=int, default=384)
    add("--queries", type=int, default=500, help="distinct query vectors (default 500)")
    add("--requests", type=int, default=4000, help="calls per row and round (default 4000)")
    add("--rounds", type=int, default=3)
    add("--k", type=int, default=10)
    add("--m", type=int, default=32)
    add("--ef-construction", type=int, default=128)
    add("--ef-search", type=int, default=64)
    args = parser.parse_args()
    # What bench_stores' service and in-process makers read.
    args.embeddings, args.service_kind, args.faiss_kind = None, "HNSW", "HNSW"
    args.batch, args.max_ingest_seconds = 5000, float("inf")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    build_loadgen()
    print_table(args, asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
