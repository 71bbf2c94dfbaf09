"""Builds the adapters and the domain objects from settings; opened and closed as one unit."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.clients.annotation import AnnotationClient
from gateway.clients.cache import LruCache, RedisCache
from gateway.clients.embedder import EmbedderClient
from gateway.clients.resilience import CircuitBreaker
from gateway.clients.vector_search import ShardedVectorSearch
from gateway.config import GatewaySettings
from gateway.domain.jobs import Jobs
from gateway.domain.recommend import Recommender
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: GatewaySettings
    metrics: GatewayMetrics
    embedder: EmbedderClient
    store: ShardedVectorSearch
    cache: LruCache | RedisCache
    annotation: AnnotationClient
    recommender: Recommender
    jobs: Jobs

    async def close(self) -> None:
        await self.jobs.wait()
        await self.embedder.close()
        await self.store.close()
        await self.cache.close()
        await self.annotation.close()


def build_services(settings: GatewaySettings, metrics: GatewayMetrics | None = None) -> Services:
    """Must run inside the event loop that will use the clients (gRPC aio channels bind to it)."""
    metrics = metrics or GatewayMetrics()
    embedder = EmbedderClient(
        settings.embedder_url,
        timeout_s=settings.embed_timeout_s,
        retries=settings.retries,
        version_ttl_s=settings.metadata_ttl_s,
        breaker=CircuitBreaker("embedder", settings.breaker_failures, settings.breaker_reset_s),
    )
    store = ShardedVectorSearch(
        settings.vector_search_shards,
        timeout_s=settings.search_timeout_s,
        retries=settings.retries,
        breaker_failures=settings.breaker_failures,
        breaker_reset_s=settings.breaker_reset_s,
    )
    cache: LruCache | RedisCache
    if settings.redis_url:
        cache = RedisCache(settings.redis_url, settings.cache_prefix, metrics.observe_cache)
    else:
        log.info("REDIS_URL not set: using an in-process LRU cache")
        cache = LruCache(settings.lru_size, metrics.observe_cache)
    recommender = Recommender(
        embedder=embedder,
        store=store,
        cache=cache,
        catalogues=settings.catalogues,
        default_model=settings.default_model,
        cache_ttl_s=settings.cache_ttl_s,
        max_k=settings.max_k,
        max_upload_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        decode_timeout_s=settings.decode_timeout_s,
        generation_ttl_s=settings.metadata_ttl_s,
    )
    return Services(
        settings=settings,
        metrics=metrics,
        embedder=embedder,
        store=store,
        cache=cache,
        annotation=AnnotationClient(settings.annotation_url),
        recommender=recommender,
        jobs=Jobs(),
    )
