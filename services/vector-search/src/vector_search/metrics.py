"""Prometheus metrics of vector-search (the default registry unless a test passes its own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from fashionrec_common.metrics import latency_histogram


def request_latency(registry: CollectorRegistry | None = None) -> Histogram:
    """``vector_search_request_seconds{method,code}``: gRPC handling time per call."""
    return latency_histogram(
        "vector_search_request_seconds", "gRPC handling time", ("method", "code"), registry
    )
