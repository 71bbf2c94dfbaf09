"""Vector-search memory per item: resident bytes of a Collection, split by structure.

Builds a ``Collection`` in this process (HNSW by default, 384-d, Myntra-like metadata:
category, class, colour, a ~40-char title, a ~30-char image path, in_stock) in batches, and
measures resident memory (VmRSS after ``gc`` and ``malloc_trim``) at half and at full size:
the slope between the two is the cost of one more item, fixed costs left out. The split comes
from the structures themselves: FAISS sizes for the engine, a deep ``sys.getsizeof`` walk
for the Python side (each object counted once, in the first structure that reaches it).
A second, smaller build under ``tracemalloc`` cross-checks the Python/numpy share (FAISS
allocates in C++, which tracemalloc does not see). Prints Markdown tables.

    .venv/bin/python bench/bench_vs_memory.py --n 100000
    .venv/bin/python bench/bench_vs_memory.py --n 100000 --param M=16
    .venv/bin/python bench/bench_vs_memory.py --n 100000 --native   # + the native front's hits
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import time
import tracemalloc
from typing import Any

import faiss
import numpy as np

from vector_search.index.collection import Collection
from vector_search.index.spec import Filter, IndexSpec, SearchOptions
from vector_search.native.front import DEFAULT_LIB, NativeFront, load_library
from vector_search.native.mirror import NativeMirror

CATEGORIES = ["Apparel", "Footwear", "Accessories", "Personal Care", "Free Items", "Home"]
CLASSES = (
    "Tshirts Shirts Kurtas Tops Jeans Trousers Shorts Dresses Sarees Jackets Sweaters "
    "Sweatshirts Heels Flats Sandals Casual-Shoes Sports-Shoes Formal-Shoes Flip-Flops "
    "Watches Handbags Wallets Belts Sunglasses Socks Caps Backpacks Perfume Lipstick Earrings"
).split()
COLOURS = (
    "Black White Blue Navy-Blue Grey Red Green Brown Pink Purple Yellow Beige Maroon Olive "
    "Silver Gold Orange Cream Charcoal Teal Khaki Multi Tan Peach Magenta Lavender Rust"
).split()
BRANDS = "Nike Puma Adidas Roadster Mango Fossil Titan Catwalk Baggit Wrangler".split()
# Which Collection attributes belong to which row of the table (old and new names).
PARTS = {
    "ids (id map, row/label maps)": (
        "ids",
        "_ext_of",
        "_row_of",
        "_row_labels",
        "_row_ext",
        "_label_row",
        "_free_labels",
        "_labels",
        "_row_pos",
    ),
    "metadata": ("meta", "_columns"),
    "inverted index": ("_inverted",),
}


def rss() -> int:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def catalogue(start: int, n: int, dim: int, seed: int) -> tuple[list[str], np.ndarray, list[dict]]:
    """One batch: ids, unit vectors, metadata; item ``i`` is the same whatever the batching."""
    rng = np.random.default_rng(seed + start)
    x = rng.standard_normal((n, dim)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids, metas = [], []
    for i in range(start, start + n):
        cls, colour = CLASSES[i * 7 % len(CLASSES)], COLOURS[i * 13 % len(COLOURS)]
        brand = BRANDS[i * 3 % len(BRANDS)]
        title = f"{brand} Women {colour} Solid {cls} {i:07d}"
        ids.append(f"myntra-{i:07d}")
        metas.append(
            {
                "category": CATEGORIES[i % len(CATEGORIES)],
                "class": cls,
                "colour": colour,
                "title": (title + " Regular Fit")[:40],
                "image": f"data/images/myntra/{i:07d}.jpg",
                "in_stock": "true" if i % 10 else "false",
            }
        )
    return ids, x, metas


def build(coll: Collection, start: int, stop: int, dim: int, batch: int, gen: int) -> int:
    for lo in range(start, stop, batch):
        ids, x, metas = catalogue(lo, min(batch, stop - lo), dim, seed=0)
        gen += 1
        coll.apply_upsert(gen, ids, x, metas)
    return gen


def deep_size(obj: Any, seen: set[int]) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return sys.getsizeof(obj) if obj.base is None else obj.nbytes
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in obj)
    elif not isinstance(obj, type | str | int | float | bytes):
        if hasattr(obj, "__dict__"):
            size += deep_size(vars(obj), seen)
        for slot in getattr(type(obj), "__slots__", ()):
            size += deep_size(getattr(obj, slot, None), seen)
    return size


def engine_parts(coll: Collection) -> dict[str, int]:
    base = coll.engine.base
    out = {"vectors (FAISS storage)": 0, "HNSW graph": 0, "FAISS id map": 0}
    if base is None:
        return out
    out["FAISS id map"] = base.id_map.size() * 8 if hasattr(base, "id_map") else 0
    inner = faiss.downcast_index(base.index) if hasattr(base, "index") else base
    out["vectors (FAISS storage)"] = inner.ntotal * 4 * coll.engine.dim_out
    if hasattr(inner, "hnsw"):
        h = inner.hnsw
        out["HNSW graph"] = h.neighbors.size() * 4 + h.levels.size() * 4 + h.offsets.size() * 8
    return out


def python_parts(coll: Collection) -> dict[str, int]:
    seen: set[int] = set()
    out: dict[str, int] = {}
    vecs = getattr(coll, "_vecs", None)
    out["vectors (raw store)"] = 0 if vecs is None else coll.count * vecs.shape[1] * 4
    if vecs is not None:
        seen.add(id(vecs))
    for part, attrs in PARTS.items():
        out[part] = sum(deep_size(getattr(coll, a), seen) for a in attrs if hasattr(coll, a))
    return out


def filtered_latency(coll: Collection, dim: int, repeat: int = 30) -> dict[str, float]:
    """Median ms of one filtered search: a broad filter (1/6 of items) and a narrow one."""
    q = catalogue(10**8, 8, dim, seed=1)[1]
    out = {}
    for label, filters in (
        ("category=Footwear", (Filter("category", ("Footwear",)),)),
        ("colour=Black & class=Heels", (Filter("colour", ("Black",)), Filter("class", ("Heels",)))),
        ("no filter", ()),
    ):
        opts = SearchOptions(k=10, filters=filters)
        times = []
        for r in range(repeat):
            t0 = time.perf_counter()
            coll.search(q[r % 8 : r % 8 + 1], opts, [None])
            times.append(time.perf_counter() - t0)
        out[label] = 1000 * float(np.median(times))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--kind", default="HNSW")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--param", action="append", default=[], help="index param, e.g. M=16")
    ap.add_argument("--trace-n", type=int, default=10_000, help="items for the tracemalloc pass")
    ap.add_argument("--label", default="")
    ap.add_argument("--native", action="store_true", help="attach the native front's mirror")
    args = ap.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    spec = IndexSpec("myntra/bench", args.dim, "L2", args.kind, 0, params).validate()
    n, half = args.n, args.n // 2

    base = rss()
    coll = Collection(spec)
    front = NativeFront(load_library(DEFAULT_LIB)) if args.native else None
    if front is not None:  # what the service holds per item when its native front runs
        coll.mirror = NativeMirror(front, spec)
    t0 = time.perf_counter()
    gen = build(coll, 0, half, args.dim, args.batch, 0)
    at_half = rss()
    build(coll, half, n, args.dim, args.batch, gen)
    build_s = time.perf_counter() - t0
    at_full = rss()
    slope = (at_full - at_half) / (n - half)
    parts = {**engine_parts(coll), **python_parts(coll)}
    if front is not None:
        parts["native front hits (id + metadata, encoded)"] = coll.mirror.nbytes()
    estimate = coll.memory_bytes()
    latency = filtered_latency(coll, args.dim)
    del coll
    gc.collect()

    tracemalloc.start()
    small = Collection(spec)
    t_base = tracemalloc.get_traced_memory()[0]
    build(small, 0, args.trace_n, args.dim, args.batch, 0)
    traced = (tracemalloc.get_traced_memory()[0] - t_base) / args.trace_n
    tracemalloc.stop()

    print(f"\n{args.label} {args.kind} {params or ''} dim={args.dim} n={n:,} build {build_s:.0f} s")
    print("\n| bytes per item | |\n|---|---:|")
    print(f"| **resident (RSS slope, {half:,} to {n:,})** | **{slope:,.0f}** |")
    print(f"| resident (RSS growth / n) | {(at_full - base) / n:,.0f} |")
    for name, size in parts.items():
        print(f"| {name} | {size / n:,.0f} |")
    print(f"| rest (allocator, unattributed) | {slope - sum(parts.values()) / n:,.0f} |")
    print(f"| tracemalloc, Python + numpy ({args.trace_n:,} items) | {traced:,.0f} |")
    print(f"| `memory_bytes()` estimate | {estimate / n:,.0f} |")
    print("\n| filtered search, k=10 (median ms) | |\n|---|---:|")
    for label, ms in latency.items():
        print(f"| {label} | {ms:.2f} |")


if __name__ == "__main__":
    main()
