"""Prometheus helpers: an exposition endpoint for HTTP apps and for gRPC processes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, make_asgi_app, start_http_server
from prometheus_client.registry import REGISTRY

# 0.5 ms to 10 s: fine enough for vector search, wide enough for large embedding batches.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def latency_histogram(
    name: str, doc: str, labels: tuple[str, ...], registry: CollectorRegistry | None = None
) -> Histogram:
    """A histogram in seconds with the shared buckets."""
    return Histogram(name, doc, labels, buckets=LATENCY_BUCKETS, registry=registry or REGISTRY)


def metrics_asgi_app(registry: CollectorRegistry | None = None):  # type: ignore[no-untyped-def]
    """An ASGI app serving the Prometheus text format; mount it at ``/metrics``."""
    return make_asgi_app(registry=registry or REGISTRY)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` on its own port (for gRPC-only processes)."""
    start_http_server(port, addr=host)
