"""What one vector-search snapshot costs the process that answers searches.

A snapshot (every ``VECTOR_SEARCH_SNAPSHOT_INTERVAL_S`` after writes) begins under the
index's lock (a long read: writes wait, searches go on) and is finished, encoded and fsynced
without it, on a background thread of the same process. While Python holds the GIL for that
work, the event loop and the search threads wait. A ticker thread that sleeps 1 ms in a loop
sees those waits as gaps: the longest gap is the longest stall a search could see. The
synthetic catalogue of bench_vs_memory.py (384-d, six metadata keys); Flat writes its raw
vectors under the lock, HNSW its FAISS index (graph and vectors).

    .venv/bin/python bench/bench_vs_snapshot.py --n 200000,1000000 --kinds Flat
    .venv/bin/python bench/bench_vs_snapshot.py --n 200000 --kinds HNSW
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from bench_vs_memory import build

from vector_search.index.collection import Collection
from vector_search.index.snapshot import SnapshotData, write_snapshot
from vector_search.index.spec import IndexSpec

DIM = 384
CHUNK = 50_000


def filled(n: int, kind: str) -> Collection:
    coll = Collection(IndexSpec("shoes/bench", DIM, kind=kind))
    build(coll, 0, n, DIM, CHUNK, gen=0)
    return coll


class Ticker:
    """Sleeps 1 ms in a loop and records how long each turn really took."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(n: int, kind: str) -> dict[str, float]:
    coll = filled(n, kind)
    with Ticker() as ticker, tempfile.TemporaryDirectory() as out:
        time.sleep(0.5)
        baseline = np.array(ticker.gaps) * 1000
        ticker.gaps.clear()
        t0 = time.perf_counter()
        data = SnapshotData(coll, Path(out))  # what runs under the lock
        t1 = time.perf_counter()
        write_snapshot(Path(out), data)
        t2 = time.perf_counter()
    gaps = np.array(ticker.gaps) * 1000
    return {
        "kind": kind,
        "n": n,
        "copy_ms": (t1 - t0) * 1000,
        "write_ms": (t2 - t1) * 1000,
        "idle_max_ms": float(baseline.max()),
        "max_ms": float(gaps.max()),
        "p99_ms": float(np.percentile(gaps, 99)),
        "over_20ms": int((gaps > 20).sum()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", default="200000,1000000", help="comma list of item counts")
    p.add_argument("--kinds", default="Flat", help="comma list of index kinds (Flat, HNSW)")
    args = p.parse_args()
    print("| kind | items | under the lock ms | after it ms | longest stall ms (idle) | "
          "stall p99 ms | stalls > 20 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        for n in (int(v) for v in args.n.split(",")):
            r = measure(n, kind)
            print(
                f"| {kind} | {r['n']:,} | {r['copy_ms']:,.0f} | {r['write_ms']:,.0f} | "
                f"{r['max_ms']:,.0f} ({r['idle_max_ms']:.1f}) | {r['p99_ms']:.1f} | "
                f"{r['over_20ms']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
