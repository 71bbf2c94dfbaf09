"""Builds the adapters and the domain objects from settings; opened and closed as one unit."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.clients.annotation import AnnotationClient
from gateway.clients.cache import LruCache, RedisCache
from gateway.clients.embedder import EmbedderClient
from gateway.clients.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
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
    # Shared by REST and gRPC; None = an in-process limiter from the settings (tests).
    limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = LocalRateLimiter(self.settings.rate_limit_per_minute)

    async def close(self) -> None:
        await self.jobs.wait()
        if self.limiter is not None:
            await self.limiter.close()
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
        token=settings.vector_search_token,
        tls=settings.vector_search_tls,
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
        limiter=build_rate_limiter(settings, metrics),
    )


def build_rate_limiter(settings: GatewaySettings, metrics: GatewayMetrics) -> RateLimiter:
    """Redis (GATEWAY_RATE_LIMIT_REDIS_URL, else REDIS_URL) so replicas share buckets."""
    url = settings.rate_limit_redis_url or settings.redis_url
    if not url or settings.rate_limit_per_minute <= 0:
        return LocalRateLimiter(settings.rate_limit_per_minute)
    return RedisRateLimiter(
        url,
        settings.rate_limit_per_minute,
        prefix=settings.cache_prefix + "ratelimit",
        on_fallback=metrics.rate_limit_fallbacks.inc,
    )
