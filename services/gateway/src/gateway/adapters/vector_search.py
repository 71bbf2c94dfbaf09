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
from fashionrec_common.grpc_auth import ClientTls, bearer_metadata
from gateway.adapters.grpc_channel import channel
from gateway.adapters.grpc_errors import INVALID_CODES, raise_for_status
from gateway.adapters.resilience import CallPolicy, call
from gateway.domain.types import Filters, Hit, IndexSummary, SearchOutcome, StoredItem, VectorQuery
from gateway.errors import InvalidInput

DEFAULT_POLICY = CallPolicy()
# RESOURCE_EXHAUSTED: a message over the size limit; ALREADY_EXISTS: CreateIndex's answer.
_INVALID = INVALID_CODES | {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ALREADY_EXISTS}


def _filters(filters: Filters) -> list[pb.Filter]:
    return [pb.Filter(key=k, values=v) for k, v in filters.items()]


class VectorSearchClient:
    def __init__(
        self,
        address: str,
        *,
        policy: CallPolicy = DEFAULT_POLICY,
        token: str | SecretStr | None = None,
        tls: ClientTls | None = None,
        index_kind: str = "HNSW",
    ) -> None:
        if not address:
            raise ValueError("a vector-search address (host:port) is required")
        self.address = address
        self.index_kind = index_kind  # of the indexes ensure_index creates
        self.channel = channel(address, tls)
        self.metadata = bearer_metadata(token)  # sent with every call (vector-search auth)
        self.stub = pb_grpc.VectorSearchStub(self.channel)
        self.breaker = policy.breaker(f"vector-search[{address}]")
        self.timeout_s = policy.timeout_s
        self.retries = policy.retries

    async def close(self) -> None:
        await self.channel.close()

    async def _rpc(self, method: str, request: Any) -> Any:
        rpc: Callable[..., Awaitable[Any]] = getattr(self.stub, method)

        async def attempt(left: float) -> Any:
            try:
                return await rpc(request, timeout=left, metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                raise_for_status(exc, "vector-search", invalid=_INVALID)

        return await call(self.breaker, attempt, deadline_s=self.timeout_s, retries=self.retries)

    async def generation(self, index: str) -> tuple[int, ...]:
        reply = await self._rpc("DescribeIndex", pb.DescribeIndexRequest(index=index))
        return (int(reply.info.generation),)

    async def search(self, index: str, query: VectorQuery) -> SearchOutcome:
        request = pb.SearchRequest(
            index=index,
            query=pb.Query(vector=pb.Vector(values=query.vector)),
            k=query.k + (1 if query.exclude_id else 0),
            filters=_filters(query.filters),
        )
        reply = await self._rpc("Search", request)
        hits = [
            Hit(h.id, h.score, h.distance, dict(h.metadata))
            for h in reply.hits
            if h.id != query.exclude_id
        ]
        return SearchOutcome(hits=hits[: query.k], generation=(int(reply.generation),))

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
        """Create ``index`` of this client's kind unless it exists. An index created earlier
        with another kind (the setting changed since) is kept: the kind applies to new ones."""
        spec = pb.IndexSpec(
            name=index, dimension=dimension, metric=pb.METRIC_INNER_PRODUCT, kind=self.index_kind
        )
        try:
            await self._rpc("CreateIndex", pb.CreateIndexRequest(spec=spec, exist_ok=True))
        except InvalidInput as exc:
            if "already exists" not in str(exc):
                raise
            reply = await self._rpc("DescribeIndex", pb.DescribeIndexRequest(index=index))
            if reply.info.spec.dimension != dimension:
                raise InvalidInput(
                    f"index {index} holds {reply.info.spec.dimension}-d vectors, not {dimension}-d"
                ) from exc

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
