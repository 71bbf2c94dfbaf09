"""Vector-search over gRPC: the one FAISS service this gateway stores in and searches.

One address, no sharding: past one node the gateway uses Milvus instead
(GATEWAY_VECTOR_STORE=milvus; docs/operations.md, "Vector store: FAISS service or Milvus")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from pydantic import SecretStr

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import ClientTls, aio_channel, bearer_metadata
from gateway.adapters.resilience import CircuitBreaker, DeadlineExceeded, Unavailable, call
from gateway.domain.types import Filters, Hit, IndexSummary, SearchOutcome, StoredItem
from gateway.errors import DependencyUnavailable, InvalidInput, NotFound

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_INVALID = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ALREADY_EXISTS,
}


def _filters(filters: Filters) -> list[pb.Filter]:
    return [pb.Filter(key=k, values=v) for k, v in filters.items()]


class VectorSearchClient:
    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        breaker_failures: int = 5,
        breaker_reset_s: float = 5.0,
        token: str | SecretStr | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        if not address:
            raise ValueError("a vector-search address (host:port) is required")
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        self.address = address
        self.channel = aio_channel(address, tls, options)
        self.metadata = bearer_metadata(token)  # sent with every call (vector-search auth)
        self.stub = pb_grpc.VectorSearchStub(self.channel)
        self.breaker = CircuitBreaker(
            f"vector-search[{address}]", breaker_failures, breaker_reset_s
        )
        self.timeout_s = timeout_s
        self.retries = retries

    async def close(self) -> None:
        await self.channel.close()

    async def _rpc(self, method: str, request: Any) -> Any:
        rpc: Callable[..., Awaitable[Any]] = getattr(self.stub, method)

        async def attempt(left: float) -> Any:
            try:
                return await rpc(request, timeout=left, metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                code, detail = exc.code(), exc.details() or ""
                if code == grpc.StatusCode.UNAVAILABLE:
                    raise Unavailable(detail) from exc
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise DeadlineExceeded(detail) from exc
                if code == grpc.StatusCode.NOT_FOUND:
                    raise NotFound(detail) from exc
                if code in _INVALID:
                    raise InvalidInput(detail) from exc
                raise DependencyUnavailable("vector-search", f"{code.name}: {detail}") from exc

        return await call(self.breaker, attempt, deadline_s=self.timeout_s, retries=self.retries)

    async def generation(self, index: str) -> tuple[int, ...]:
        reply = await self._rpc("DescribeIndex", pb.DescribeIndexRequest(index=index))
        return (int(reply.info.generation),)

    async def search(
        self,
        index: str,
        vector: Sequence[float],
        k: int,
        filters: Filters,
        exclude_id: str | None = None,
    ) -> SearchOutcome:
        request = pb.SearchRequest(
            index=index,
            query=pb.Query(vector=pb.Vector(values=vector)),
            k=k + (1 if exclude_id else 0),
            filters=_filters(filters),
        )
        reply = await self._rpc("Search", request)
        hits = [
            Hit(h.id, h.score, h.distance, dict(h.metadata))
            for h in reply.hits
            if h.id != exclude_id
        ]
        return SearchOutcome(hits=hits[:k], generation=(int(reply.generation),))

    async def get(self, index: str, item_id: str, with_vector: bool) -> StoredItem | None:
        reply = await self._rpc(
            "Get", pb.GetRequest(index=index, ids=[item_id], with_vectors=with_vector)
        )
        for item in reply.items:
            if item.id == item_id:
                vector = list(item.vector) if with_vector else None
                return StoredItem(item.id, dict(item.metadata), vector)
        return None

    async def upsert(self, index: str, items: Sequence[StoredItem]) -> None:
        batch = [pb.Item(id=it.id, vector=it.vector or [], metadata=it.metadata) for it in items]
        await self._rpc("Upsert", pb.UpsertRequest(index=index, items=batch))

    async def delete(self, index: str, item_id: str) -> bool:
        reply = await self._rpc("Delete", pb.DeleteRequest(index=index, ids=[item_id]))
        return reply.deleted > 0

    async def ensure_index(self, index: str, dimension: int) -> None:
        spec = pb.IndexSpec(
            name=index, dimension=dimension, metric=pb.METRIC_INNER_PRODUCT, kind="Flat"
        )
        await self._rpc("CreateIndex", pb.CreateIndexRequest(spec=spec, exist_ok=True))

    async def list_indexes(self) -> list[IndexSummary]:
        reply = await self._rpc("ListIndexes", pb.ListIndexesRequest())
        found = (
            IndexSummary(i.spec.name, i.spec.dimension, i.count, i.generation)
            for i in reply.indexes
        )
        return sorted(found, key=lambda s: s.name)

    async def list_items(
        self, index: str, offset: int, limit: int, filters: Filters
    ) -> tuple[list[StoredItem], int]:
        """One page in insertion order, and how many items match."""
        request = pb.ListItemsRequest(
            index=index, offset=offset, limit=max(limit, 1), filters=_filters(filters)
        )
        reply = await self._rpc("ListItems", request)
        items = [StoredItem(i.id, dict(i.metadata)) for i in reply.items]
        return items[:limit], int(reply.total)

    async def check(self) -> None:
        try:
            await self._rpc("ListIndexes", pb.ListIndexesRequest())
        except Exception as exc:
            raise RuntimeError(f"{self.address}: {exc}") from exc
