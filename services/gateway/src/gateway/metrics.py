"""Prometheus metrics of one gateway instance (own registry, so tests can build many apps)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from fashionrec_common.heap import gc_pause_histogram
from fashionrec_common.metrics import latency_histogram
from gateway.domain.timing import Timings

# Finer than the shared latency buckets: the overhead target (5 ms p50) needs sub-ms resolution.
OVERHEAD_BUCKETS = (
    *(i / 4000 for i in range(1, 21)),  # 0.25 ms steps to 5 ms
    0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.stage = latency_histogram(
            "gateway_stage_seconds",
            "Time per request stage (decode, cache, generation, route, embed, search, total)",
            ("operation", "stage"),
            registry=self.registry,
        )
        self.cache = Counter(
            "gateway_cache_requests",
            "Cache lookups by result (hit, miss, error = cache unavailable)",
            ("result",),
            registry=self.registry,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "The gateway's own time per request: total minus the route, embed and search stages",
            ("operation", "cache"),
            buckets=OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "gateway_errors", "Error replies by code", ("code",), registry=self.registry
        )
        self.gc_pauses = gc_pause_histogram(self.registry)
        self.rate_limit_fallbacks = Counter(
            "gateway_rate_limit_fallbacks",
            "Rate-limit checks answered by this replica's own bucket because Redis failed",
            registry=self.registry,
        )

    def observe_cache(self, result: str) -> None:
        self.cache.labels(result).inc()

    def record(self, operation: str, timings: Timings, cached: bool) -> None:
        stages = timings.stages
        for stage, seconds in stages.items():
            self.stage.labels(operation, stage).observe(seconds)
        waited = sum(stages.get(name, 0.0) for name in ("route", "embed", "search"))
        own = stages["total"] - waited
        self.overhead.labels(operation, "hit" if cached else "miss").observe(max(own, 0.0))


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format of ``registry``; under GATEWAY_WORKERS > 1 (PROMETHEUS_MULTIPROC_DIR
    set by the parent) every worker's samples merged instead, whichever worker answers."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)
    return generate_latest(registry)
