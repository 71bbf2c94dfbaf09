"""Prometheus metrics, named like TF Serving's (``:tensorflow:serving:*``), own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fashionrec_common.metrics import latency_histogram

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServingMetrics:
    """Per-model-and-version request counts and latency, batch sizes and queue depth."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            ":tensorflow:serving:request_count",
            "Requests by model, version, API, entrypoint and status.",
            ("model_name", "model_version", "API", "entrypoint", "status"),
            registry=self.registry,
        )
        self.latency = latency_histogram(
            ":tensorflow:serving:request_latency",
            "End-to-end request latency in seconds, per model and version.",
            ("model_name", "model_version", "API", "entrypoint"),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Rows per batch that ran through a model.",
            ("model_name", "model_version"),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            ":tensorflow:serving:batching_session:queued_requests",
            "Requests waiting in the batching queue.",
            ("model_name", "model_version"),
            registry=self.registry,
        )

    def observe(
        self, model: str, version: str, api: str, entrypoint: str, status: str, seconds: float
    ) -> None:
        self.requests.labels(model, version, api, entrypoint, status).inc()
        self.latency.labels(model, version, api, entrypoint).observe(seconds)
