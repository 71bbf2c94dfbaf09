"""Embedder memory under hostile uploads (issue 14, point 3): RSS before and after 100 of them.

Starts our TF-Serving-compatible server on a freshly exported model (the real export path with
random weights, or the toy model), warms it up with one normal image, then sends hostile images
through REST ``:predict`` from a few concurrent clients: 100-frame 4000x4000 GIFs (1.3 MB each),
flat 25-megapixel PNGs (at the gateway's limit, so served) and PNGs declaring 30000x30000.
Prints a markdown table; the budget is growth <= 200 MB.

    .venv/bin/python bench/bench_hostile_memory.py
    .venv/bin/python bench/bench_hostile_memory.py --model toy --uploads 30
"""

from __future__ import annotations

import argparse
import base64
import io
import logging
import os
import struct
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image
from served_embedder import served_embedder

log = logging.getLogger("bench_hostile_memory")
BUDGET_MB = 200


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def flat_png(width: int, height: int, declared: tuple[int, int] | None = None) -> bytes:
    """A flat-colour PNG (tens of KB for 25 MP); ``declared`` puts other dimensions in IHDR."""
    w, h = declared or (width, height)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    row = b"\0" + b"\x80\x40\x20" * width
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    )


def animated_gif(side: int, frames: int) -> bytes:
    """``frames`` flat ``side`` x ``side`` frames: one image block repeated."""
    buf = io.BytesIO()
    Image.new("P", (side, side), 1).save(buf, "GIF", optimize=False)
    data = buf.getvalue()
    start = data.index(b",", 13)
    return data[:start] + data[start:-1] * frames + b";"


def normal_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((320, 240), 40).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def export(kind: str, base: Path) -> Path:
    """``base/<kind>``: the real export graph (random infogan 64) or the toy model."""
    if kind == "toy":
        from fashionrec_testing.toy_model import export_toy_model

        export_toy_model(base, "toy", 1, warmup=False)
    else:
        from embedder.models import build_gan, embedding_extractor
        from embedder.servable import export_model

        extractor = embedding_extractor(build_gan("infogan", image_size=64))
        export_model(extractor, input_size=64, model_base=base, name=kind, warmup=False)
    return base / kind


def in_process(model_dir: Path, images: dict[str, bytes]) -> Callable[[str], int]:
    """The serving signature called directly: 200, or 400 for InvalidArgumentError."""
    import tensorflow as tf

    version = max(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())
    serve = tf.saved_model.load(str(model_dir / str(version))).signatures["serving_default"]

    def call(kind: str) -> int:
        try:
            serve(images=tf.constant([images[kind]]))["embedding"].numpy()
        except tf.errors.InvalidArgumentError:
            return 400
        return 200

    return call


@dataclass
class Measured:
    """What one run observed, kept together so that measuring and reporting stay apart."""

    before: float
    after: float
    peak: float
    wall: float
    ok_after: int
    statuses: Counter[tuple[str, int]]
    seconds: dict[str, list[float]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="infogan", help="'infogan' (real export) or 'toy'")
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--settle-s", type=float, default=5.0, help="idle time before 'after'")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="call the SavedModel's signature in this process (as TF Serving runs the graph, "
        "without our server's checks) instead of our server over REST",
    )
    return parser.parse_args()


def uploads() -> tuple[dict[str, bytes], list[str]]:
    """The hostile images by label, plus ``normal`` (warm-up and the check after), and the
    hostile labels alone, in the order they are sent."""
    hostile = {
        "GIF 100 frames 4000x4000": animated_gif(4000, 100),
        "PNG flat 5000x5000 (25 MP)": flat_png(5000, 5000),
        "PNG declaring 30000x30000": flat_png(8, 8, declared=(30000, 30000)),
    }
    kinds = list(hostile)
    hostile["normal"] = normal_jpeg()
    return hostile, kinds


def over_rest(predict: str, bodies: dict[str, dict]) -> Callable[[str], int]:
    """Our server's REST ``:predict``: the status code for the upload of that label."""

    def call(kind: str) -> int:
        return httpx.post(predict, json=bodies[kind], timeout=120).status_code

    return call


def send_hostile(
    call: Callable[[str], int], kinds: list[str], n: int, concurrency: int
) -> tuple[Counter[tuple[str, int]], dict[str, list[float]], float]:
    """``n`` hostile uploads, round robin over ``kinds``: statuses, seconds per kind, wall s."""
    statuses: Counter[tuple[str, int]] = Counter()
    seconds: dict[str, list[float]] = {k: [] for k in kinds}

    def send(i: int) -> None:
        kind = kinds[i % len(kinds)]
        t0 = time.perf_counter()
        status = call(kind)
        seconds[kind].append(time.perf_counter() - t0)
        statuses[(kind, status)] += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(n)))
    return statuses, seconds, time.perf_counter() - start


def measure(
    call: Callable[[str], int], pid: int, kinds: list[str], args: argparse.Namespace
) -> Measured:
    """RSS after warm-up, the hostile uploads, RSS after settling, then one normal request."""
    for _ in range(3):
        assert call("normal") == 200
    before = rss_mb(pid)
    statuses, seconds, wall = send_hostile(call, kinds, args.uploads, args.concurrency)
    time.sleep(args.settle_s)
    after, peak = rss_mb(pid), rss_mb(pid, "VmHWM")
    ok_after = call("normal")
    return Measured(before, after, peak, wall, ok_after, statuses, seconds)


def report(
    args: argparse.Namespace, hostile: dict[str, bytes], kinds: list[str], m: Measured
) -> None:
    """The two markdown tables: per upload kind, then memory against the budget."""
    growth = m.after - m.before
    where = "in-process SavedModel (no server checks)" if args.in_process else "our server, REST"
    print(f"\n{where}: model {args.model}, {args.uploads} uploads, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs, {m.wall:.1f} s\n")  # fmt: skip
    print("| upload | bytes | status: count | median s |")
    print("|---|---|---|---|")
    for kind in kinds:
        counts = ", ".join(f"{s}: {n}" for (k, s), n in sorted(m.statuses.items()) if k == kind)
        times = sorted(m.seconds[kind])
        median = times[len(times) // 2] if times else float("nan")
        print(f"| {kind} | {len(hostile[kind]):,} | {counts} | {median:.2f} |")
    print("\n| RSS before MB | RSS after MB | growth MB | peak (VmHWM) MB | within 200 MB | "
          "normal request after |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    verdict = "yes" if growth <= BUDGET_MB else "NO"
    print(f"| {m.before:.0f} | {m.after:.0f} | {growth:+.0f} | {m.peak:.0f} | {verdict} | "
          f"{m.ok_after} |")  # fmt: skip


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args()
    hostile, kinds = uploads()
    bodies = {k: {"instances": [{"b64": base64.b64encode(v).decode()}]} for k, v in hostile.items()}
    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    model_dir = export(args.model, work / "models")
    with ExitStack() as stack:
        if args.in_process:
            call = in_process(model_dir, hostile)
            pid = os.getpid()
        else:
            served = stack.enter_context(served_embedder(model_dir, args.model))
            pid = served.child.process.pid
            predict = f"{served.system.url('embedder')}/v1/models/{args.model}:predict"
            call = over_rest(predict, bodies)
        measured = measure(call, pid, kinds, args)
    report(args, hostile, kinds, measured)


if __name__ == "__main__":
    main()
