"""Gateway load test on loopback: requests/s and p50/p99 for cached and uncached search.

Starts the real embedder server (a toy SavedModel with the contract signature), one
vector-search shard and ``python -m gateway`` (Redis at REDIS_URL if it answers), ingests
synthetic catalogue images, then drives POST /v1/search with an asyncio httpx client at
concurrency 1, 8 and 32 for a fixed time per cell. The gateway's own overhead per request
is read from its Server-Timing header: total minus the embed and search stages.

    .venv/bin/python bench/bench_gateway.py [--seconds 6] [--items 400] [--image-size 64]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from fashionrec_common.supervisor import Supervisor, free_port, http_ok, tcp_open

PY = sys.executable
EXPORT = """
import sys
from pathlib import Path
from embedder.serving.toy_model import export_toy_model, write_models_config
base = Path(sys.argv[1])
export_toy_model(base, "infogan", 1, size=int(sys.argv[2]), dim=256, warmup=False)
write_models_config(base, ["infogan"])
"""


def png(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def drive(url: str, images: list[bytes], concurrency: int, seconds: float) -> dict:
    """``images`` of length 1 = every request the same (cached after the first)."""
    latencies: list[float] = []
    overheads: list[float] = []
    errors = 0
    counter = 0
    end = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, counter
        while time.perf_counter() < end:
            data = images[counter % len(images)]
            counter += 1
            start = time.perf_counter()
            reply = await client.post(
                "/v1/search", files={"image": ("q.jpg", data, "image/jpeg")}, data={"k": "10"}
            )
            elapsed = time.perf_counter() - start
            if reply.status_code != 200:
                errors += 1
                continue
            latencies.append(elapsed)
            stages = dict(
                (part.split(";dur=")[0].strip(), float(part.split(";dur=")[1]))
                for part in reply.headers["server-timing"].split(",")
            )
            overheads.append(stages["total"] - stages.get("embed", 0) - stages.get("search", 0))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        if len(images) == 1:
            await client.post("/v1/search", files={"image": ("q.jpg", images[0])}, data={"k": "10"})
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "rps": len(latencies) / wall,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "overhead_p50_ms": statistics.median(overheads) if overheads else float("nan"),
        "n": len(latencies),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    models = work / "models"
    subprocess.run([PY, "-c", EXPORT, str(models), str(args.image_size)], check=True)
    catalog = work / "catalog"
    (catalog / "images").mkdir(parents=True)
    with (catalog / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "category", "class", "product_id", "base_colour", "product_title"])
        for i in range(args.items):
            (catalog / "images" / f"{i}.jpg").write_bytes(png(i, args.image_size))
            writer.writerow([f"images/{i}.jpg", "shoes", "heels", i, "Black", f"Item {i}"])
    rest, vs, gw = free_port(), free_port(), free_port()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    with Supervisor(out=(work / "children.log").open("w"), colour=False) as sup:
        emb = sup.start("embedder", [PY, "-m", "embedder.serving", "--port", "0",
                        "--rest_api_port", str(rest),
                        "--model_config_file", str(models / "models.config")])  # fmt: skip
        vsp = sup.start("vector-search", [PY, "-m", "vector_search", "--port", str(vs),
                        "--data-dir", str(work / "vs")])  # fmt: skip
        sup.wait_until(emb, lambda: http_ok(f"http://127.0.0.1:{rest}/v1/models/infogan"))
        sup.wait_until(vsp, lambda: tcp_open("127.0.0.1", vs))
        subprocess.run([PY, "-m", "gateway", "ingest", "--catalog", str(catalog), "--models",
                        "infogan", "--embedder-url", f"http://127.0.0.1:{rest}",
                        "--shards", f"127.0.0.1:{vs}"], check=True)  # fmt: skip
        env = {
            "GATEWAY_PORT": str(gw),
            "GATEWAY_GRPC_PORT": "0",
            "GATEWAY_EMBEDDER_URL": f"http://127.0.0.1:{rest}",
            "GATEWAY_VECTOR_SEARCH_SHARDS": f"127.0.0.1:{vs}",
            "GATEWAY_API_KEYS": "bench",
            "GATEWAY_VOTE_TOKEN_SECRET": "bench",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_CACHE_PREFIX": f"bench:{os.getpid()}:",
            "REDIS_URL": redis_url,
        }
        gwp = sup.start("gateway", [PY, "-m", "gateway"], env=env)
        url = f"http://127.0.0.1:{gw}"
        sup.wait_until(gwp, lambda: http_ok(f"{url}/healthz"))
        queries = [png(100_000 + i, args.image_size) for i in range(5000)]
        print("| mode | concurrency | req/s | p50 ms | p99 ms | gateway overhead p50 ms | n |")
        print("|---|---|---|---|---|---|---|")
        for mode in ("cached", "uncached"):
            for conc in (1, 8, 32):
                imgs = queries[:1] if mode == "cached" else queries
                if mode == "uncached":
                    queries = queries[conc * 1000 :] + queries[: conc * 1000]  # fresh images
                r = asyncio.run(drive(url, imgs, conc, args.seconds))
                row = (mode, conc, f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}")
                tail = (f"{r['overhead_p50_ms']:.2f}", r["n"])
                print("| " + " | ".join(map(str, (*row, *tail))) + " |", flush=True)
                if r["errors"]:
                    print(f"  ({r['errors']} non-200 replies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
