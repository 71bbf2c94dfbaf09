"""Gateway settings: GATEWAY_* environment variables plus REDIS_URL (no prefix)."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from fashionrec_common.grpc_auth import ClientTls, ServerTls, parse_tokens
from fashionrec_common.settings import ServiceSettings

log = logging.getLogger(__name__)

CommaList = Annotated[list[str], NoDecode]
MAX_AUTO_WORKERS = 4


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class VectorStoreSettings(BaseModel):
    """Which VectorStore the gateway and ``python -m gateway ingest`` use (docs/operations.md,
    "Vector store: FAISS service or Milvus"); mixed into both settings classes."""

    vector_store: Literal["faiss", "milvus"] = "faiss"
    # The FAISS service's auth: the token sent to it and optional TLS
    # (GATEWAY_VECTOR_SEARCH_TLS__CA_FILE, ...; docs/operations.md).
    vector_search_token: SecretStr | None = None
    vector_search_tls: ClientTls | None = None
    faiss_index: Literal["HNSW", "Flat", "IVF"] = Field(
        default="HNSW",
        description="kind of the indexes created in the FAISS service (existing ones are kept): "
        "HNSW keeps searches fast as a catalogue grows (recall@10 0.99 at 1M items, "
        "docs/benchmarks.md); Flat is exact and its search time grows with the item count",
    )
    milvus_uri: str = Field(
        default="var/milvus/gateway.db",
        description="a file path runs Milvus Lite in-process; http(s)://host:19530 a server",
    )
    milvus_token: SecretStr | None = None
    milvus_collection_prefix: str = Field(
        default="fashionrec_", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
    )
    milvus_index: Literal["HNSW", "IVF_FLAT"] = "HNSW"
    milvus_hnsw_m: int = Field(default=16, ge=2, le=2048)
    milvus_hnsw_ef_construction: int = Field(default=200, gt=0)
    milvus_hnsw_ef: int = Field(default=64, gt=0)
    milvus_ivf_nlist: int = Field(default=1024, ge=1, le=65536)
    milvus_ivf_nprobe: int = Field(default=32, ge=1, le=65536)
    milvus_consistency: Literal["Strong", "Session", "Bounded", "Eventually"] = Field(
        default="Strong", description="Strong: a write is visible to the next read anywhere"
    )

    @property
    def milvus_lite(self) -> bool:
        return self.vector_store == "milvus" and "://" not in self.milvus_uri


class EmbedderTlsSettings(BaseModel):
    """TLS to the embedder (GATEWAY_EMBEDDER_TLS__CA_FILE, __CERT_FILE, __KEY_FILE,
    __SERVER_NAME; docs/operations.md): TF Serving started with ``--ssl_config_file`` (grpc://)
    or behind an https endpoint; mixed into the gateway's and the ingest CLI's settings."""

    embedder_tls: ClientTls | None = None


class GatewaySettings(ServiceSettings, VectorStoreSettings, EmbedderTlsSettings):
    """Everything the gateway needs; secrets have no production default."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    port: int = Field(default=8080, ge=0, le=65535)
    grpc_port: int = Field(default=8081, ge=0, le=65535, description="0 disables gRPC")
    dev: bool = Field(default=False, description="generate missing secrets (never in production)")
    workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description="REST worker processes on one port; 0 = auto: one per usable core (at most "
        f"{MAX_AUTO_WORKERS}) when REDIS_URL shares cache, jobs and rate limits, else 1",
    )

    embedder_url: str = Field(
        default="grpc://127.0.0.1:8500",
        pattern=r"^(https?|grpc)://\S+$",
        description="TF Serving (ours or the real one): its REST API, http://host:8501, or its "
        "gRPC API, grpc://host:8500 (raw image bytes, no JSON: less CPU per search)",
    )
    vector_search_address: str = Field(
        default="127.0.0.1:50051", min_length=1, description="the FAISS service, host:port"
    )
    vector_search_shards: str | None = Field(
        default=None, exclude=True, description="removed; refused with a message at startup"
    )
    # Internal gRPC security (docs/operations.md): the tokens this gateway's own gRPC server
    # accepts (two during a rotation) and its optional TLS (GATEWAY_GRPC_TLS__...); what it
    # sends to vector-search is in VectorStoreSettings.
    grpc_auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    grpc_tls: ServerTls | None = None
    annotation_url: str = "http://127.0.0.1:8090"
    catalog_dir: Path | None = None
    public_url: str = Field(default="", description="base of image URLs; empty = request URL")
    catalogues: CommaList = Field(default_factory=lambda: ["shoes", "handbags"])
    default_model: str = "infogan"
    routing_model: str = Field(
        default="",
        description="model whose indexes route uploads without a catalogue (a k-NN vote); "
        "empty = the requested model",
    )

    api_keys: CommaList = Field(default_factory=list, description="keys for write endpoints")
    vote_token_secret: SecretStr | None = None
    cors_origins: CommaList = Field(default_factory=list)
    fetch_allow_hosts: CommaList = Field(
        default_factory=list, description="hosts image_url may point to; empty = no URL fetches"
    )

    max_upload_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=25_000_000, gt=0)
    max_k: int = Field(default=100, gt=0)
    decode_timeout_s: float = Field(default=2.0, gt=0)
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="per API key, else per client address; 0 = off"
    )
    rate_limit_redis_url: str | None = Field(
        default=None, description="Redis shared by replicas for rate limits; empty = REDIS_URL"
    )
    job_redis_url: str | None = Field(
        default=None, description="Redis for ingest job records; empty = REDIS_URL"
    )
    job_ttl_s: int = Field(default=7 * 24 * 3600, gt=0, description="ingest job records in Redis")
    job_lease_s: float = Field(
        default=30.0, gt=0, description="a running job silent this long reads 'interrupted'"
    )
    job_heartbeat_s: float = Field(default=5.0, gt=0, description="runner heartbeat; < lease")
    image_url_deadline_s: float = Field(
        default=5.0, gt=0, le=60, description="whole image_url fetch: connect and every read"
    )
    cache_ttl_s: int = Field(default=300, gt=0)
    cache_prefix: str = "fashionrec:gw:"
    lru_size: int = Field(default=2048, gt=0)

    metadata_ttl_s: float = Field(
        default=1.0,
        ge=0,
        description="how long model versions and index generations are trusted (0 = ask each time)",
    )
    embed_timeout_s: float = Field(default=10.0, gt=0)
    search_timeout_s: float = Field(default=2.0, gt=0)
    retries: int = Field(default=2, ge=0, le=5)
    breaker_failures: int = Field(default=5, gt=0)
    breaker_reset_s: float = Field(default=5.0, gt=0)

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )

    @field_validator(
        "catalogues",
        "api_keys",
        "cors_origins",
        "fetch_allow_hosts",
        mode="before",
    )
    @classmethod
    def _comma(cls, value: object) -> object:
        return _split(value)

    @field_validator("grpc_auth_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        return parse_tokens(value)

    @field_validator("vector_search_shards")
    @classmethod
    def _no_shards(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "GATEWAY_VECTOR_SEARCH_SHARDS is gone: the FAISS service is one node, set "
                "GATEWAY_VECTOR_SEARCH_ADDRESS=host:port; past one node use "
                "GATEWAY_VECTOR_STORE=milvus (docs/operations.md, 'Scale')"
            )
        return None

    @model_validator(mode="after")
    def _embedder_tls(self) -> GatewaySettings:
        """TLS settings never fall back to plaintext: refused at start with an http:// URL."""
        if self.embedder_tls is not None and self.embedder_url.startswith("http://"):
            raise ValueError(
                "GATEWAY_EMBEDDER_TLS__* needs a grpc:// or https:// GATEWAY_EMBEDDER_URL, "
                f"not {self.embedder_url!r}"
            )
        return self

    @model_validator(mode="after")
    def _job_lease(self) -> GatewaySettings:
        if self.job_heartbeat_s * 2 > self.job_lease_s:
            raise ValueError("GATEWAY_JOB_LEASE_S must be at least twice GATEWAY_JOB_HEARTBEAT_S")
        return self

    @model_validator(mode="after")
    def _workers(self) -> GatewaySettings:
        """More than one process needs state they share: Redis, and a store not in-process."""
        if self.workers > 1 and not self.redis_url:
            raise ValueError(
                "GATEWAY_WORKERS > 1 needs REDIS_URL: worker processes must share the cache, "
                "ingest jobs and rate limits (or set GATEWAY_WORKERS=1)"
            )
        if self.workers > 1 and self.milvus_lite:
            raise ValueError(
                "GATEWAY_WORKERS > 1 cannot share Milvus Lite (a file opened in-process): "
                "use a Milvus server URI or GATEWAY_WORKERS=1"
            )
        return self

    def worker_count(self, cores: int | None) -> int:
        """GATEWAY_WORKERS, or for 0 (auto) one per core up to MAX_AUTO_WORKERS where the
        processes can share state (REDIS_URL set, no Milvus Lite), else 1. The default is 1:
        on the 2-core benchmark machine a second process gained nothing (docs/benchmarks.md,
        "Runs 25-32")."""
        if self.workers:
            return self.workers
        if not self.redis_url or self.milvus_lite:
            return 1
        return max(1, min(cores or 1, MAX_AUTO_WORKERS))

    @model_validator(mode="after")
    def _secrets(self) -> GatewaySettings:
        """Refuse to start without write keys and a vote secret, unless in dev mode."""
        if not self.api_keys:
            if not self.dev:
                raise ValueError("GATEWAY_API_KEYS is required (or GATEWAY_DEV=1 for a dev key)")
            self.api_keys = [secrets.token_urlsafe(24)]
            log.warning("dev mode: generated API key %s", self.api_keys[0])
        if self.vote_token_secret is None:
            if not self.dev:
                raise ValueError("GATEWAY_VOTE_TOKEN_SECRET is required (or GATEWAY_DEV=1)")
            self.vote_token_secret = SecretStr(secrets.token_urlsafe(32))
        return self
