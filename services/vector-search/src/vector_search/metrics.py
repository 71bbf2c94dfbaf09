"""Prometheus metrics of vector-search (the default registry unless a test passes its own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from fashionrec_common.metrics import latency_histogram


def request_latency(registry: CollectorRegistry | None = None) -> Histogram:
    """``vector_search_request_seconds{method,code}``: gRPC handling time per call."""
    return latency_histogram(
        "vector_search_request_seconds", "gRPC handling time", ("method", "code"), registry
    )


class FrontCalls(Collector):
    """``vector_search_front_calls_total{path}``: calls the native front answered itself
    (``native``) and forwarded to Python (``forwarded``). Native searches do not pass through
    the Python handlers, so ``vector_search_request_seconds`` does not count them."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "vector_search_front_calls", "Calls at the native front, by path", labels=["path"]
        )
        for path, count in self._stats().items():
            family.add_metric([path], count)
        yield family


def front_calls(stats: Callable[[], dict[str, int]], registry: CollectorRegistry | None) -> None:
    (registry or REGISTRY).register(FrontCalls(stats))
