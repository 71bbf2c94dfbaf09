"""What the domain needs from the outside world; adapters and test fakes implement these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.domain.job_record import HEARTBEAT, Job, JobUpdate
from gateway.domain.types import Filters, IndexSummary, SearchOutcome, StoredItem, VectorQuery


class Embedder(Protocol):
    async def model_version(self, model: str) -> str:
        """The version the embedder serves now (part of every cache key)."""
        ...

    async def embed(self, model: str, images: Sequence[bytes]) -> list[list[float]]: ...

    async def check(self, model: str) -> None: ...

    async def close(self) -> None: ...


class VectorStore(Protocol):
    """Where vectors live: the FAISS service (one node) or Milvus (wiring.build_vector_store).

    ``partial`` on a search means the store answered from part of the index; such answers
    are not cached. Neither adapter sets it today; the API field stays for its clients."""

    async def generation(self, index: str) -> tuple[int, ...]: ...

    async def search(self, index: str, query: VectorQuery) -> SearchOutcome: ...

    async def get(self, index: str, item_id: str, with_vector: bool) -> StoredItem | None: ...

    async def upsert(self, index: str, items: Sequence[StoredItem]) -> None: ...

    async def delete(self, index: str, item_id: str) -> bool: ...

    async def ensure_index(self, index: str, dimension: int) -> None: ...

    async def list_indexes(self) -> list[IndexSummary]: ...

    async def list_items(
        self, index: str, offset: int, limit: int, filters: Filters
    ) -> tuple[list[StoredItem], int]: ...

    async def check(self) -> None: ...


class Cache(Protocol):
    """Never raises: an outage degrades to misses (adapters log and count it)."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def check(self) -> None: ...


class JobStore(Protocol):
    """Ingest job records, shared by replicas when the adapter is shared (Redis).

    Every method raises ``DependencyUnavailable`` when the store cannot be reached."""

    async def create(self, job: Job) -> None: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def update(self, job_id: str, now: float, update: JobUpdate = HEARTBEAT) -> None:
        """Apply ``update`` as ``Job.apply`` does, with counts added atomically; a job that
        is gone (expired, trimmed) is left alone."""
        ...

    async def close(self) -> None: ...
