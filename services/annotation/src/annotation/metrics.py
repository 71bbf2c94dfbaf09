"""Prometheus metrics of one annotation app (own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest


class AnnotationMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.votes_total = Counter(
            "annotation_votes", "Vote requests by outcome", ["outcome"], registry=self.registry
        )

    def exposition(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type (Prometheus text format)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
