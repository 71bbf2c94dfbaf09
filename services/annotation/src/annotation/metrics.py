"""Prometheus metrics of one annotation app (own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from fashionrec_common.heap import gc_pause_histogram


class AnnotationMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.votes_total = Counter(
            "annotation_votes", "Vote requests by outcome", ["outcome"], registry=self.registry
        )
        self.gc_pauses = gc_pause_histogram(self.registry)  # python_gc_pause_seconds, as elsewhere

    def exposition(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type (Prometheus text format)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
