"""gRPC adapter: proto in, domain call on a worker thread, proto out; errors mapped once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
import numpy as np
from prometheus_client import Histogram

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from vector_search import errors
from vector_search.config import VectorSearchSettings
from vector_search.convert import (
    filters_from_proto,
    hits_to_proto,
    info_to_proto,
    items_to_arrays,
    options_from_request,
    spec_from_proto,
    vector_from_values,
)
from vector_search.index.managed import ManagedIndex
from vector_search.index.registry import IndexRegistry

log = logging.getLogger(__name__)
T = TypeVar("T")

# Most specific first: DimensionMismatch is an InvalidArgument.
STATUS: list[tuple[type[errors.VectorSearchError], grpc.StatusCode]] = [
    (errors.IndexNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.ItemNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.IndexExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
]


def status_for(exc: errors.VectorSearchError) -> grpc.StatusCode:
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


class VectorSearchServicer(pb_grpc.VectorSearchServicer):
    def __init__(
        self,
        registry: IndexRegistry,
        settings: VectorSearchSettings,
        pools: dict[str, ThreadPoolExecutor],
        latency: Histogram,
    ) -> None:
        self.reg = registry
        self.settings = settings
        self.pools = pools
        self.latency = latency

    async def _run(
        self, ctx: grpc.aio.ServicerContext, method: str, pool: str, fn: Callable[[], T]
    ) -> T:
        start, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            remaining = ctx.time_remaining()
            if remaining is not None and remaining <= 0:
                code = grpc.StatusCode.DEADLINE_EXCEEDED
                await ctx.abort(code, "deadline exceeded before start")
            try:
                fut = asyncio.get_running_loop().run_in_executor(self.pools[pool], fn)
                return await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                code = grpc.StatusCode.DEADLINE_EXCEEDED
                await ctx.abort(code, f"{method} did not finish before the deadline")
            except errors.VectorSearchError as exc:
                code = status_for(exc)
                await ctx.abort(code, str(exc))
            raise AssertionError("unreachable")  # ctx.abort always raises
        finally:
            self.latency.labels(method, code.name).observe(time.perf_counter() - start)

    def _check_batch(self, n: int) -> None:
        if n > self.settings.max_batch:
            raise errors.ResourceExhausted(f"{n} entries, the limit is {self.settings.max_batch}")

    async def CreateIndex(
        self, request: pb.CreateIndexRequest, context: Any
    ) -> pb.CreateIndexResponse:
        def work() -> pb.CreateIndexResponse:
            index, created = self.reg.create(spec_from_proto(request.spec), request.exist_ok)
            return pb.CreateIndexResponse(info=info_to_proto(index), created=created)

        return await self._run(context, "CreateIndex", "write", work)

    async def ListIndexes(
        self, request: pb.ListIndexesRequest, context: Any
    ) -> pb.ListIndexesResponse:
        def work() -> pb.ListIndexesResponse:
            return pb.ListIndexesResponse(indexes=[info_to_proto(i) for i in self.reg.list()])

        return await self._run(context, "ListIndexes", "search", work)

    async def DescribeIndex(
        self, request: pb.DescribeIndexRequest, context: Any
    ) -> pb.DescribeIndexResponse:
        def work() -> pb.DescribeIndexResponse:
            return pb.DescribeIndexResponse(info=info_to_proto(self.reg.get(request.index)))

        return await self._run(context, "DescribeIndex", "search", work)

    async def DropIndex(self, request: pb.DropIndexRequest, context: Any) -> pb.DropIndexResponse:
        def work() -> pb.DropIndexResponse:
            self.reg.drop(request.index)
            return pb.DropIndexResponse()

        return await self._run(context, "DropIndex", "write", work)

    async def Upsert(self, request: pb.UpsertRequest, context: Any) -> pb.UpsertResponse:
        def work() -> pb.UpsertResponse:
            self._check_batch(len(request.items))
            index = self.reg.get(request.index)
            ids, vectors, metas = items_to_arrays(request.items, index.spec.dimension)
            n, gen = index.upsert(ids, vectors, metas)
            return pb.UpsertResponse(upserted=n, generation=gen)

        return await self._run(context, "Upsert", "write", work)

    async def Delete(self, request: pb.DeleteRequest, context: Any) -> pb.DeleteResponse:
        def work() -> pb.DeleteResponse:
            self._check_batch(len(request.ids))
            n, gen = self.reg.get(request.index).delete(list(request.ids))
            return pb.DeleteResponse(deleted=n, generation=gen)

        return await self._run(context, "Delete", "write", work)

    async def Get(self, request: pb.GetRequest, context: Any) -> pb.GetResponse:
        def work() -> pb.GetResponse:
            self._check_batch(len(request.ids))
            found, missing = self.reg.get(request.index).get(list(request.ids))
            items = [
                pb.Item(id=ext, metadata=meta, vector=vec.tolist() if request.with_vectors else [])
                for ext, meta, vec in found
            ]
            return pb.GetResponse(items=items, missing=missing)

        return await self._run(context, "Get", "search", work)

    async def ListItems(self, request: pb.ListItemsRequest, context: Any) -> pb.ListItemsResponse:
        def work() -> pb.ListItemsResponse:
            limit = min(request.limit or 100, 1000)
            page, total = self.reg.get(request.index).list_items(
                request.offset, limit, filters_from_proto(request.filters)
            )
            items = [pb.Item(id=ext, metadata=meta) for ext, meta in page]
            return pb.ListItemsResponse(items=items, total=total)

        return await self._run(context, "ListItems", "search", work)

    def _search_group(
        self, index: ManagedIndex, reqs: list[pb.SearchRequest]
    ) -> list[pb.SearchResponse]:
        """Requests sharing index, k, filters and params: one FAISS call for all of them."""
        opts = options_from_request(reqs[0], self.settings.max_k)
        dim = index.spec.dimension
        rows, self_ids = [], []
        for req in reqs:
            target = req.query.WhichOneof("target")
            if target == "vector":
                rows.append(vector_from_values(req.query.vector.values, dim))
                self_ids.append(None)
            elif target == "id":
                rows.append(index.vectors_of([req.query.id])[0])
                self_ids.append(req.query.id)
            else:
                raise errors.InvalidArgument("query needs a vector or an id")
        hits, gen = index.search(np.stack(rows), opts, self_ids)
        return [hits_to_proto(h, gen) for h in hits]

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        def work() -> pb.SearchResponse:
            return self._search_group(self.reg.get(request.index), [request])[0]

        # Always on the search pool, never the event loop: FAISS releases the GIL, so
        # concurrent searches use every core while the loop keeps accepting requests.
        return await self._run(context, "Search", "search", work)

    async def BatchSearch(
        self, request: pb.BatchSearchRequest, context: Any
    ) -> pb.BatchSearchResponse:
        def work() -> pb.BatchSearchResponse:
            self._check_batch(len(request.requests))
            groups: dict[bytes, list[int]] = {}
            for pos, req in enumerate(request.requests):
                key = pb.SearchRequest(
                    index=req.index, k=req.k, filters=req.filters, params=req.params
                ).SerializeToString(deterministic=True)
                groups.setdefault(key, []).append(pos)
            out: list[pb.SearchResponse | None] = [None] * len(request.requests)
            for positions in groups.values():
                reqs = [request.requests[p] for p in positions]
                index = self.reg.get(reqs[0].index)
                for pos, resp in zip(positions, self._search_group(index, reqs), strict=True):
                    out[pos] = resp
            return pb.BatchSearchResponse(responses=out)

        return await self._run(context, "BatchSearch", "batch", work)
