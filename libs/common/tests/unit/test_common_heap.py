"""The collector helpers: frozen start-up objects are out of the collector's way, and every
collection's pause lands in each registry's histogram."""

from __future__ import annotations

import gc
import subprocess
import sys

from prometheus_client import CollectorRegistry

from fashionrec_common.heap import gc_pause_histogram

FREEZE = """
import gc
from fashionrec_common.heap import freeze_startup_objects
kept = [[i] for i in range(100_000)]  # what set-up made and keeps
[[i] for i in range(1000)]  # garbage made before the freeze is collected, not frozen
before = len(gc.get_objects())
frozen = freeze_startup_objects()
print(before, frozen, len(gc.get_objects()))
"""


def test_freeze_moves_the_live_objects_out_of_the_collectors_generations() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FREEZE], capture_output=True, text=True, check=True
    )  # its own process: freezing pytest's objects would outlive this test
    before, frozen, after = (int(v) for v in done.stdout.split())
    assert frozen >= 100_000 and before >= 100_000
    assert after < before / 10  # a full collection now walks a tenth of the objects, or less


def _count(registry: CollectorRegistry, generation: str) -> float:
    value = registry.get_sample_value("python_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_every_collection_is_observed_once_per_registry() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    gc_pause_histogram(first)
    gc_pause_histogram(second)
    from fashionrec_common import heap

    assert gc.callbacks.count(heap._on_collection) == 1  # one callback, however many registries
    registries = (first, second)
    before = {(r, g): _count(r, g) for r in registries for g in ("0", "2")}
    gc.collect(0)
    gc.collect(2)
    for registry in registries:
        assert _count(registry, "0") >= before[registry, "0"] + 1
        assert _count(registry, "2") >= before[registry, "2"] + 1
    assert registry.get_sample_value("python_gc_pause_seconds_sum", {"generation": "2"}) > 0
