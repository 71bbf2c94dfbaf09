"""Builds the adapters and the domain objects from settings; opened and closed as one unit."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fashionrec_common.grpc_auth import ClientTls
from gateway.adapters.annotation import AnnotationClient
from gateway.adapters.cache import LruCache, RedisCache
from gateway.adapters.embedder import VERSION_TTL_S, EmbedderClient
from gateway.adapters.embedder_grpc import EmbedderGrpcClient
from gateway.adapters.job_store import RedisJobStore
from gateway.adapters.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from gateway.adapters.resilience import CallPolicy
from gateway.adapters.vector_search import VectorSearchClient
from gateway.config import GatewaySettings, VectorStoreSettings
from gateway.domain.images import ImageLimits
from gateway.domain.jobs import Jobs
from gateway.domain.ports import Embedder
from gateway.domain.recommend import Recommender
from gateway.metrics import GatewayMetrics

if TYPE_CHECKING:
    from gateway.adapters.milvus_store import MilvusStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: GatewaySettings
    metrics: GatewayMetrics
    embedder: Embedder
    store: VectorSearchClient | MilvusStore
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
        await self.jobs.close()  # lets running jobs finish first
        if self.limiter is not None:
            await self.limiter.close()
        await self.embedder.close()
        await self.store.close()
        await self.cache.close()
        await self.annotation.close()


def build_services(settings: GatewaySettings, metrics: GatewayMetrics | None = None) -> Services:
    """Must run inside the event loop that will use the clients (gRPC aio channels bind to it)."""
    metrics = metrics or GatewayMetrics()
    policy = CallPolicy(
        retries=settings.retries,
        breaker_failures=settings.breaker_failures,
        breaker_reset_s=settings.breaker_reset_s,
    )
    embedder = build_embedder(
        settings.embedder_url,
        replace(policy, timeout_s=settings.embed_timeout_s),
        version_ttl_s=settings.metadata_ttl_s,
        tls=settings.embedder_tls,
    )
    store = build_vector_store(
        settings,
        settings.vector_search_address,
        replace(policy, timeout_s=settings.search_timeout_s),
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
        image_limits=ImageLimits(
            settings.max_upload_bytes, settings.max_pixels, settings.decode_timeout_s
        ),
        generation_ttl_s=settings.metadata_ttl_s,
        routing_model=settings.routing_model,
    )
    return Services(
        settings=settings,
        metrics=metrics,
        embedder=embedder,
        store=store,
        cache=cache,
        annotation=AnnotationClient(settings.annotation_url),
        recommender=recommender,
        jobs=build_jobs(settings),
        limiter=build_rate_limiter(settings, metrics),
    )


def build_embedder(
    url: str,
    policy: CallPolicy,
    version_ttl_s: float = VERSION_TTL_S,
    tls: ClientTls | None = None,
) -> EmbedderClient | EmbedderGrpcClient:
    """TF Serving's gRPC API for ``grpc://host:port`` (less CPU per call), its REST API for
    ``http(s)://``; the ingest CLI uses it too. ``tls`` (GATEWAY_EMBEDDER_TLS__*) needs a
    grpc:// or https:// URL: settings that ask for TLS never fall back to plaintext."""
    if url.startswith("grpc://"):
        return EmbedderGrpcClient(url, policy=policy, version_ttl_s=version_ttl_s, tls=tls)
    if tls is not None and not url.startswith("https://"):
        raise ValueError(f"embedder TLS is configured but {url!r} is plain http")
    return EmbedderClient(url, policy=policy, version_ttl_s=version_ttl_s, tls=tls)


def build_jobs(settings: GatewaySettings) -> Jobs:
    """Job records in Redis (GATEWAY_JOB_REDIS_URL, else REDIS_URL) so any replica answers
    a poll; else in this process."""
    url = settings.job_redis_url or settings.redis_url
    store = None
    if url:
        store = RedisJobStore(url, prefix=settings.cache_prefix, ttl_s=settings.job_ttl_s)
    return Jobs(store, lease_s=settings.job_lease_s, heartbeat_s=settings.job_heartbeat_s)


def build_vector_store(
    settings: VectorStoreSettings, address: str, policy: CallPolicy
) -> VectorSearchClient | MilvusStore:
    """GATEWAY_VECTOR_STORE: our FAISS service at ``address`` or Milvus; the ingest CLI uses it
    too. Milvus gets ``policy.timeout_s`` alone: that adapter neither retries nor has a breaker."""
    if settings.vector_store == "milvus":
        return _milvus_store(settings, policy.timeout_s)
    return VectorSearchClient(
        address,
        policy=policy,
        token=settings.vector_search_token,
        tls=settings.vector_search_tls,
        index_kind=settings.faiss_index,
    )


def _milvus_store(settings: VectorStoreSettings, timeout_s: float) -> MilvusStore:
    """pymilvus is imported only when chosen (it pulls pandas and pyarrow: slow to import)."""
    from gateway.adapters.milvus_store import HnswParams, IvfFlatParams, MilvusStore

    index: HnswParams | IvfFlatParams
    if settings.milvus_index == "HNSW":
        index = HnswParams(
            m=settings.milvus_hnsw_m,
            ef_construction=settings.milvus_hnsw_ef_construction,
            ef=settings.milvus_hnsw_ef,
        )
    else:
        index = IvfFlatParams(nlist=settings.milvus_ivf_nlist, nprobe=settings.milvus_ivf_nprobe)
    return MilvusStore(
        settings.milvus_uri,
        token=settings.milvus_token,
        prefix=settings.milvus_collection_prefix,
        index=index,
        consistency=settings.milvus_consistency,
        timeout_s=timeout_s,
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
