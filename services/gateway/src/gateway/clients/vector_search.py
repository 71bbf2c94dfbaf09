"""Vector-search over gRPC, sharded: writes go to the owner shard, searches fan out and merge."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from pydantic import SecretStr

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import ClientTls, aio_channel, bearer_metadata
from gateway.clients.resilience import CircuitBreaker, DeadlineExceeded, Unavailable, call
from gateway.domain.sharding import merge_top_k, shard_for
from gateway.domain.types import Filters, Hit, IndexSummary, SearchOutcome, StoredItem
from gateway.errors import DependencyUnavailable, GatewayError, InvalidInput, NotFound

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


class ShardedVectorSearch:
    def __init__(
        self,
        addresses: Sequence[str],
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        breaker_failures: int = 5,
        breaker_reset_s: float = 5.0,
        token: str | SecretStr | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("at least one vector-search address")
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        self.addresses = list(addresses)
        self.channels = [aio_channel(a, tls, options) for a in self.addresses]
        self.metadata = bearer_metadata(token)  # sent with every call (vector-search auth)
        self.stubs = [pb_grpc.VectorSearchStub(c) for c in self.channels]
        self.breakers = [
            CircuitBreaker(f"vector-search[{a}]", breaker_failures, breaker_reset_s)
            for a in self.addresses
        ]
        self.timeout_s = timeout_s
        self.retries = retries

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.channels))

    def owner(self, item_id: str) -> int:
        return shard_for(item_id, len(self.stubs))

    async def _rpc(self, shard: int, method: str, request: Any) -> Any:
        rpc: Callable[..., Awaitable[Any]] = getattr(self.stubs[shard], method)

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

        return await call(
            self.breakers[shard], attempt, deadline_s=self.timeout_s, retries=self.retries
        )

    async def _all(self, method: str, request: Any) -> list[Any]:
        """The call on every shard; each element is a reply or the exception it raised."""
        return await asyncio.gather(
            *(self._rpc(s, method, request) for s in range(len(self.stubs))),
            return_exceptions=True,
        )

    @staticmethod
    def _raise_if_all_failed(replies: list[Any]) -> None:
        errors = [r for r in replies if isinstance(r, BaseException)]
        if len(errors) < len(replies):
            return
        for kind in (InvalidInput, NotFound, DependencyUnavailable):
            for err in errors:
                if isinstance(err, kind):
                    raise err
        raise errors[0]

    @staticmethod
    def _fatal(replies: list[Any]) -> None:
        """Errors that are not a shard outage (bugs, bad input) fail the whole call."""
        for r in replies:
            if isinstance(r, BaseException) and not isinstance(r, GatewayError):
                raise r
            if isinstance(r, InvalidInput):
                raise r

    async def generation(self, index: str) -> tuple[int, ...]:
        replies = await self._all("DescribeIndex", pb.DescribeIndexRequest(index=index))
        self._raise_if_all_failed(replies)
        self._fatal(replies)
        if all(isinstance(r, NotFound) for r in replies):
            raise NotFound(f"no index {index!r}")
        return tuple(
            -1
            if isinstance(r, DependencyUnavailable)
            else 0
            if isinstance(r, NotFound)
            else int(r.info.generation)
            for r in replies
        )

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
        replies = await self._all("Search", request)
        self._raise_if_all_failed(replies)
        self._fatal(replies)
        if all(isinstance(r, NotFound) for r in replies):
            raise NotFound(f"no index {index!r}")
        per_shard = [
            [Hit(h.id, h.score, h.distance, dict(h.metadata)) for h in r.hits]
            for r in replies
            if not isinstance(r, BaseException)
        ]
        return SearchOutcome(
            hits=merge_top_k(per_shard, k, exclude_id),
            generation=tuple(-1 if isinstance(r, BaseException) else r.generation for r in replies),
            partial=any(isinstance(r, DependencyUnavailable) for r in replies),
        )

    async def get(self, index: str, item_id: str, with_vector: bool) -> StoredItem | None:
        reply = await self._rpc(
            self.owner(item_id),
            "Get",
            pb.GetRequest(index=index, ids=[item_id], with_vectors=with_vector),
        )
        for item in reply.items:
            if item.id == item_id:
                vector = list(item.vector) if with_vector else None
                return StoredItem(item.id, dict(item.metadata), vector)
        return None

    async def upsert(self, index: str, items: Sequence[StoredItem]) -> None:
        by_shard: dict[int, list[pb.Item]] = defaultdict(list)
        for it in items:
            by_shard[self.owner(it.id)].append(
                pb.Item(id=it.id, vector=it.vector or [], metadata=it.metadata)
            )
        await asyncio.gather(
            *(
                self._rpc(s, "Upsert", pb.UpsertRequest(index=index, items=b))
                for s, b in by_shard.items()
            )
        )

    async def delete(self, index: str, item_id: str) -> bool:
        shard = self.owner(item_id)
        reply = await self._rpc(shard, "Delete", pb.DeleteRequest(index=index, ids=[item_id]))
        return reply.deleted > 0

    async def ensure_index(self, index: str, dimension: int) -> None:
        spec = pb.IndexSpec(
            name=index, dimension=dimension, metric=pb.METRIC_INNER_PRODUCT, kind="Flat"
        )
        request = pb.CreateIndexRequest(spec=spec, exist_ok=True)
        await asyncio.gather(
            *(self._rpc(s, "CreateIndex", request) for s in range(len(self.stubs)))
        )

    async def list_indexes(self) -> list[IndexSummary]:
        replies = await self._all("ListIndexes", pb.ListIndexesRequest())
        self._raise_if_all_failed(replies)
        self._fatal(replies)
        merged: dict[str, IndexSummary] = {}
        for reply in replies:
            if isinstance(reply, BaseException):
                continue
            for info in reply.indexes:
                prev = merged.get(info.spec.name)
                merged[info.spec.name] = IndexSummary(
                    info.spec.name,
                    info.spec.dimension,
                    info.count + (prev.count if prev else 0),
                    info.generation + (prev.generation if prev else 0),
                )
        return sorted(merged.values(), key=lambda s: s.name)

    async def list_items(
        self, index: str, offset: int, limit: int, filters: Filters
    ) -> tuple[list[StoredItem], int]:
        """Global pages over shards in shard order (each shard in insertion order)."""
        items: list[StoredItem] = []
        total = 0
        found = False
        for shard in range(len(self.stubs)):
            request = pb.ListItemsRequest(
                index=index,
                offset=offset,
                limit=max(limit - len(items), 1),
                filters=_filters(filters),
            )
            try:
                reply = await self._rpc(shard, "ListItems", request)
            except NotFound:
                continue
            found = True
            total += reply.total
            if len(items) < limit and offset < reply.total:
                items.extend(StoredItem(i.id, dict(i.metadata)) for i in reply.items)
            offset = max(0, offset - reply.total)
        if not found:
            raise NotFound(f"no index {index!r}")
        return items[:limit], total

    async def check(self) -> None:
        replies = await self._all("ListIndexes", pb.ListIndexesRequest())
        bad = [
            f"{a}: {r}"
            for a, r in zip(self.addresses, replies, strict=True)
            if isinstance(r, BaseException)
        ]
        if bad:
            raise RuntimeError("; ".join(bad))
