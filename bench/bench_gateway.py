"""Gateway load test on loopback: requests/s and p50/p99 for cached and uncached search.

Starts the real embedder server (a toy SavedModel with the contract signature), one
vector-search shard and ``python -m gateway`` (Redis at REDIS_URL) from the system
description (fashionrec_testing.system), ingests synthetic
catalogue images, then drives ``POST /v1/search`` (JSON, ``image_b64``, k=10) at concurrency
1, 8 and 32 for a fixed time per cell, with two load generators:

* ``wrk`` (``--latency``, a Lua script; skipped with a message when wrk is not installed):
  cached = one body; uncached = distinct preloaded bodies, each connection-thread its own
  slice, more bodies than requests (a wrap-around is reported), and the gateway's cache-hit
  counter must not move during an uncached cell.
* ``python``: an asyncio httpx client that also reads every reply's Server-Timing header.

Overhead = the gateway's time minus the embed and search stages, per request. For wrk it is
the p50 of the gateway's ``gateway_overhead_seconds`` histogram delta over the cell (fine
buckets, linear interpolation inside one), plus the exact share of requests at or under 5 ms
(a bucket bound). For the Python driver it is also the median of the Server-Timing values.

    .venv/bin/python bench/bench_gateway.py [--seconds 5] [--drivers wrk,python]
        [--items 400] [--image-size 64] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from fashionrec_testing.supervisor import Supervisor
from fashionrec_testing.system import LocalSystem

PY = sys.executable
JSON = {"content-type": "application/json"}
EXPORT = """
import sys
from pathlib import Path
from fashionrec_testing.toy_model import export_toy_model, write_toy_models_config
base = Path(sys.argv[1])
export_toy_model(base, "infogan", 1, size=int(sys.argv[2]), dim=256, warmup=False)
write_toy_models_config(base, ["infogan"])
"""
PROFILED_GATEWAY = """
import asyncio, signal, sys
from pyinstrument import Profiler
from gateway.__main__ import serve
from gateway.config import GatewaySettings
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # uvicorn re-raises it after shutdown
profiler = Profiler(interval=0.0002)
profiler.start()
try:
    asyncio.run(serve(GatewaySettings()))
finally:
    profiler.stop()
    open(sys.argv[1], "w").write(profiler.output_text(show_all=False, timeline=False))
"""
WRK_LUA = r"""
-- args: bodies file (one JSON body per line), number of wrk threads.
local threads, next_id = {}, 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  local n, i, all = tonumber(args[2]), 0, {}
  bodies, counter, wrapped = {}, 1, 0
  for line in io.lines(args[1]) do
    if i % n == tid then table.insert(bodies, line) end
    table.insert(all, line)
    i = i + 1
  end
  if #all < n then bodies = all end  -- one body (cached mode): every thread sends it
end
function request()
  local body = bodies[counter]
  counter = counter + 1
  if counter > #bodies then counter, wrapped = 1, wrapped + 1 end
  return wrk.format("POST", "/v1/search", {["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + (t:get("wrapped") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), w))
end
"""


def jpeg(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def body(data: bytes) -> str:
    return json.dumps({"image_b64": base64.b64encode(data).decode(), "k": 10})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def overhead_buckets(url: str) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts of gateway_overhead_seconds{operation="search"} by cache result."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "gateway_overhead_seconds":
            continue
        for s in family.samples:
            if s.name.endswith("_bucket") and s.labels.get("operation") == "search":
                out.setdefault(s.labels["cache"], {})[float(s.labels["le"])] = s.value
    return out


def histogram_stats(before: dict, after: dict, cache: str) -> tuple[float, float, int]:
    """(p50 ms by linear interpolation in its bucket, share <= 5 ms, n) of the delta."""
    now, then = after.get(cache, {}), before.get(cache, {})
    bounds = sorted(now)
    cum = [now[b] - then.get(b, 0.0) for b in bounds]
    total = cum[-1] if cum else 0
    if not total:
        return float("nan"), float("nan"), 0
    lo, prev = 0.0, 0.0
    p50 = float("nan")
    for bound, count in zip(bounds, cum, strict=True):
        if count >= total / 2:
            upper = bound if bound != float("inf") else lo
            p50 = (lo + (upper - lo) * (total / 2 - prev) / max(count - prev, 1e-9)) * 1000
            break
        lo, prev = bound, count
    under5 = next(c for b, c in zip(bounds, cum, strict=True) if b >= 0.005) / total
    return p50, under5, int(total)


def cache_hits(url: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        if family.name == "gateway_cache_requests":
            for s in family.samples:
                if s.labels.get("result") == "hit" and s.name.endswith("_total"):
                    return s.value
    return 0.0


async def drive(url: str, bodies: list[str], concurrency: int, seconds: float) -> dict:
    """``bodies`` of length 1 = every request the same (cached after the first)."""
    latencies: list[float] = []
    overheads: list[float] = []
    errors = counter = 0
    end = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, counter
        while time.perf_counter() < end:
            data = bodies[counter % len(bodies)]
            counter += 1
            start = time.perf_counter()
            reply = await client.post("/v1/search", content=data, headers=JSON)
            elapsed = time.perf_counter() - start
            if reply.status_code != 200:
                errors += 1
                continue
            latencies.append(elapsed)
            stages = {
                part.split(";dur=")[0].strip(): float(part.split(";dur=")[1])
                for part in reply.headers["server-timing"].split(",")
            }
            overheads.append(stages["total"] - stages.get("embed", 0) - stages.get("search", 0))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "rps": len(latencies) / wall,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "timing_p50_ms": statistics.median(overheads) if overheads else float("nan"),
        "n": len(latencies),
        "errors": errors,
    }


def run_wrk(url: str, bodies: Path, script: Path, conc: int, seconds: float) -> dict:
    threads = min(conc, 2)
    cmd = ["wrk", "-t", str(threads), "-c", str(conc), "-d", f"{seconds:g}s", "--latency",
           "--timeout", "30s", "-s", str(script), url, "--", str(bodies), str(threads)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH "))
    r = json.loads(line[len("BENCH ") :])
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "n": r["requests"],
        "errors": r["non2xx"] + r["socket_errors"],
        "detail": f"{r['non2xx']} non-2xx, {r['socket_errors']} socket errors",
        "wrapped": r["wrapped"],
    }


@contextmanager
def stack(args: argparse.Namespace, work: Path) -> Iterator[str]:
    """Embedder, vector-search and gateway of the system description on free loopback ports,
    catalogue ingested; yields the gateway URL."""
    system = LocalSystem.on_free_ports(
        models=work / "models",
        catalog=work / "catalog",
        state=work / "state",
        tuning={
            "gateway": {
                "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
                "GATEWAY_LOG_LEVEL": "WARNING",
                "GATEWAY_CACHE_PREFIX": f"bench:{os.getpid()}:",
                "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"),
            }
        },
    )
    subprocess.run([PY, "-c", EXPORT, str(system.models), str(args.image_size)], check=True)
    (system.catalog / "images").mkdir(parents=True)
    with (system.catalog / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "category", "class", "product_id", "base_colour", "product_title"])
        for i in range(args.items):
            (system.catalog / "images" / f"{i}.jpg").write_bytes(jpeg(i, args.image_size))
            writer.writerow([f"images/{i}.jpg", "shoes", "heels", i, "Black", f"Item {i}"])
    with Supervisor(out=(work / "children.log").open("w"), colour=False) as sup:
        system.start_all(sup, ["embedder", "vector-search"])
        subprocess.run([PY, "-m", "gateway", "ingest", "--catalog", str(system.catalog),
                        "--models", "infogan", "--embedder-url", system.url("embedder"),
                        "--vector-search", system.address("vector-search")],
                       check=True, env=system.environ("gateway"))  # fmt: skip
        # a sampling profiler around the gateway's event loop, or the plain module
        profiled = [PY, "-c", PROFILED_GATEWAY, str(args.profile)] if args.profile else None
        system.start(sup, "gateway", argv=profiled)
        yield system.url("gateway")


def cell(args, url: str, driver: str, mode: str, conc: int, seed: int, work: Path) -> list:
    """One (driver, mode, concurrency) measurement as a table row."""
    count = 1 if mode == "cached" else args.bodies
    bodies = [body(jpeg(seed + i, args.image_size)) for i in range(count)]
    if mode == "cached":  # fill the cache first
        httpx.post(
            f"{url}/v1/search", content=bodies[0], headers=JSON, timeout=30
        ).raise_for_status()
    before, hits = overhead_buckets(url), cache_hits(url)
    if driver == "wrk":
        path = work / f"bodies-{seed}.jsonl"
        path.write_text("\n".join(bodies) + "\n")
        r = run_wrk(url, path, work / "bench.lua", conc, args.seconds)
    else:
        r = asyncio.run(drive(url, bodies, conc, args.seconds))
    p50, under5, n = histogram_stats(
        before, overhead_buckets(url), "hit" if mode == "cached" else "miss"
    )
    new_hits = cache_hits(url) - hits
    notes = []
    if r["errors"]:
        notes.append(r.get("detail", f"{r['errors']} errors"))
    if mode == "uncached" and (new_hits or r.get("wrapped")):
        notes.append(f"{new_hits:.0f} cache hits, {r.get('wrapped', 0)} wrap-arounds")
    timing = f"{r['timing_p50_ms']:.2f}" if "timing_p50_ms" in r else "-"
    return [driver, mode, conc, f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
            f"{p50:.2f}", timing, f"{under5:.0%}", r["n"], "; ".join(notes)]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--drivers", default="wrk,python", help="comma list of wrk, python")
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--bodies", type=int, default=3000, help="distinct uncached bodies")
    parser.add_argument("--modes", default="cached,uncached")
    parser.add_argument("--concurrency", default="1,8,32", help="comma list")
    parser.add_argument("--profile", type=Path, help="run the gateway under pyinstrument")
    args = parser.parse_args()
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    if "wrk" in drivers and shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk): skipping the wrk driver")
        drivers.remove("wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    (work / "bench.lua").write_text(WRK_LUA)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with stack(args, work) as url:
        print("| driver | mode | conc. | req/s | p50 ms | p99 ms | overhead p50 ms (histogram) "
              "| overhead p50 ms (Server-Timing) | overhead <= 5 ms | n | notes |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        seed = 1_000_000
        for driver in drivers:
            for mode in args.modes.split(","):
                for conc in map(int, args.concurrency.split(",")):
                    seed += 100_000  # fresh images for every cell: nothing is cached before
                    row = cell(args, url, driver, mode, conc, seed, work)
                    print("| " + " | ".join(map(str, row)) + " |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
