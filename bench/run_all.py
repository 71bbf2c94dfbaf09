"""`make bench`: run every benchmark in turn and print its table.

Each script starts what it measures, compares against its in-process baseline in
the same run, and prints a table; copy the tables into docs/benchmarks.md with the
machine and the date. Pass a benchmark's name to run only that one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "embedder-serving": ["bench_embedder_serving.py", "--rounds", "3"],
    "vector-search": ["bench_vector_search.py"],
    "gateway": ["bench_gateway.py"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help=f"benchmarks to run: {', '.join(BENCHES)}")
    args = parser.parse_args()
    if unknown := set(args.only) - set(BENCHES):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failed = []
    for name in args.only or list(BENCHES):
        script, *extra = BENCHES[name]
        print(f"\n=== {name}: {script} {' '.join(extra)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / script), *extra])  # noqa: S603
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
