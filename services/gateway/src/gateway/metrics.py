"""Prometheus metrics of one gateway instance (own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from fashionrec_common.metrics import latency_histogram
from gateway.domain.timing import Timings


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.stage = latency_histogram(
            "gateway_stage_seconds",
            "Time per request stage (decode, cache, generation, embed, search, total)",
            ("operation", "stage"),
            registry=self.registry,
        )
        self.cache = Counter(
            "gateway_cache_requests",
            "Cache lookups by result (hit, miss, error = cache unavailable)",
            ("result",),
            registry=self.registry,
        )
        self.errors = Counter(
            "gateway_errors", "Error replies by code", ("code",), registry=self.registry
        )

    def observe_cache(self, result: str) -> None:
        self.cache.labels(result).inc()

    def record(self, operation: str, timings: Timings) -> None:
        for stage, seconds in timings.stages.items():
            self.stage.labels(operation, stage).observe(seconds)
