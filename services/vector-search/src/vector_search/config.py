"""Settings for the vector-search service (env prefix ``VECTOR_SEARCH_``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from fashionrec_common.grpc_auth import ServerTls, parse_tokens
from fashionrec_common.settings import ServiceSettings


class VectorSearchSettings(ServiceSettings):
    """Everything the process needs; the data directory is the only state."""

    model_config = SettingsConfigDict(
        env_prefix="VECTOR_SEARCH_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("var/vector-search")
    port: int = Field(default=50051, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # always: fsync each write before the reply; batch: fsync every fsync_interval_s
    # (acknowledged writes survive a process kill, not a power cut); never: leave it to the OS.
    fsync: Literal["always", "batch", "never"] = "always"
    fsync_interval_s: float = Field(default=0.05, gt=0)
    # Every snapshot_interval_s, an index with at least snapshot_min_writes writes since its
    # last snapshot is snapshotted once those writes touched snapshot_min_fraction of its items
    # or the oldest of them is snapshot_max_age_s old: a big index with a trickle of writes is
    # not rewritten in full every minute (the WAL keeps those writes durable meanwhile).
    snapshot_interval_s: float = Field(default=60.0, gt=0)
    snapshot_min_writes: int = Field(default=1, ge=1)
    snapshot_min_fraction: float = Field(default=0.05, ge=0)
    snapshot_max_age_s: float = Field(default=600.0, ge=0)
    max_k: int = Field(default=1000, ge=1)
    max_batch: int = Field(default=10_000, ge=1)
    max_vectors_per_index: int = Field(default=20_000_000, ge=1)
    # One search thread per core: FAISS searches release the GIL and run in parallel.
    search_threads: int = Field(default_factory=lambda: os.cpu_count() or 4, ge=1)
    write_threads: int = Field(default=2, ge=1)
    use_gpu: bool = False
    # The C++ front (native/front.cc) on the public port, answering plain vector searches and
    # forwarding the rest to this process's grpcio server behind it. auto: when built.
    native: Literal["auto", "on", "off"] = "auto"
    native_lib: Path | None = None  # default: vector_search/native/libvsfront.so.0
    # Bearer tokens callers must send (comma-separated; two during a rotation). Empty: open.
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    tls: ServerTls | None = Field(default=None, description="VECTOR_SEARCH_TLS__CERT_FILE, ...")

    @field_validator("auth_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        return parse_tokens(value)
