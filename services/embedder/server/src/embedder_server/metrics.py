"""Prometheus metrics, named like TF Serving's (``:tensorflow:serving:*``), own registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fashionrec_common.heap import gc_pause_histogram
from fashionrec_common.metrics import latency_histogram

PREFIX = ":tensorflow:serving:"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
MODEL_LABELS = ("model_name", "model_version")
REQUEST_LABELS = (*MODEL_LABELS, "API", "entrypoint")
M = TypeVar("M")


class ServingMetrics:
    """Per-model-and-version request counts and latency, batch sizes and queue depth."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.gc_pauses = gc_pause_histogram(self.registry)  # python_gc_pause_seconds, unprefixed
        self.requests = self._metric(
            Counter,
            "request_count",
            "Requests by model, version, API, entrypoint and status.",
            (*REQUEST_LABELS, "status"),
        )
        self.latency = self._metric(
            latency_histogram,
            "request_latency",
            "End-to-end request latency in seconds, per model and version.",
            REQUEST_LABELS,
        )
        self.batch_size = self._metric(
            Histogram,
            "batching_session:processed_batch_size",
            "Rows per batch that ran through a model.",
            MODEL_LABELS,
            buckets=BATCH_BUCKETS,
        )
        self.queue_depth = self._metric(
            Gauge,
            "batching_session:queued_requests",
            "Requests waiting in the batching queue.",
            MODEL_LABELS,
        )

    def _metric(
        self, kind: Callable[..., M], name: str, doc: str, labels: tuple[str, ...], **kwargs: Any
    ) -> M:
        """A ``kind`` metric named ``:tensorflow:serving:<name>``, in this registry."""
        return kind(PREFIX + name, doc, labels, registry=self.registry, **kwargs)

    def observe(
        self, model: str, version: str, api: str, entrypoint: str, status: str, seconds: float
    ) -> None:
        self.requests.labels(model, version, api, entrypoint, status).inc()
        self.latency.labels(model, version, api, entrypoint).observe(seconds)
