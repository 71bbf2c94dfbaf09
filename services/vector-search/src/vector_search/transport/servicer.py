"""gRPC adapter: proto in, domain call on a worker thread, proto out; errors mapped once."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
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
Req = TypeVar("Req")

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


def _rpc(
    pool: str,
) -> Callable[[Callable[[Any, Req], T]], Callable[[Any, Req, Any], Awaitable[T]]]:
    """Make ``method(self, request)`` the gRPC method of its name: it runs on the worker
    pool ``pool`` through ``VectorSearchServicer._run`` (deadline, status, latency)."""

    def wrap(method: Callable[[Any, Req], T]) -> Callable[[Any, Req, Any], Awaitable[T]]:
        @functools.wraps(method)
        async def rpc(self: VectorSearchServicer, request: Req, context: Any) -> T:
            return await self._run(context, method.__name__, pool, lambda: method(self, request))

        return rpc

    return wrap


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

    @_rpc("write")
    def CreateIndex(self, request: pb.CreateIndexRequest) -> pb.CreateIndexResponse:
        index, created = self.reg.create(spec_from_proto(request.spec), request.exist_ok)
        return pb.CreateIndexResponse(info=info_to_proto(index), created=created)

    @_rpc("search")
    def ListIndexes(self, request: pb.ListIndexesRequest) -> pb.ListIndexesResponse:
        return pb.ListIndexesResponse(indexes=[info_to_proto(i) for i in self.reg.list()])

    @_rpc("search")
    def DescribeIndex(self, request: pb.DescribeIndexRequest) -> pb.DescribeIndexResponse:
        return pb.DescribeIndexResponse(info=info_to_proto(self.reg.get(request.index)))

    @_rpc("write")
    def DropIndex(self, request: pb.DropIndexRequest) -> pb.DropIndexResponse:
        self.reg.drop(request.index)
        return pb.DropIndexResponse()

    @_rpc("write")
    def Upsert(self, request: pb.UpsertRequest) -> pb.UpsertResponse:
        self._check_batch(len(request.items))
        index = self.reg.get(request.index)
        ids, vectors, metas = items_to_arrays(request.items, index.spec.dimension)
        n, gen = index.upsert(ids, vectors, metas)
        return pb.UpsertResponse(upserted=n, generation=gen)

    @_rpc("write")
    def Delete(self, request: pb.DeleteRequest) -> pb.DeleteResponse:
        self._check_batch(len(request.ids))
        n, gen = self.reg.get(request.index).delete(list(request.ids))
        return pb.DeleteResponse(deleted=n, generation=gen)

    @_rpc("search")
    def Get(self, request: pb.GetRequest) -> pb.GetResponse:
        self._check_batch(len(request.ids))
        found, missing = self.reg.get(request.index).get(list(request.ids))
        items = [
            pb.Item(id=ext, metadata=meta, vector=vec.tolist() if request.with_vectors else [])
            for ext, meta, vec in found
        ]
        return pb.GetResponse(items=items, missing=missing)

    @_rpc("search")
    def ListItems(self, request: pb.ListItemsRequest) -> pb.ListItemsResponse:
        limit = min(request.limit or 100, 1000)
        page, total = self.reg.get(request.index).list_items(
            request.offset, limit, filters_from_proto(request.filters)
        )
        items = [pb.Item(id=ext, metadata=meta) for ext, meta in page]
        return pb.ListItemsResponse(items=items, total=total)

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

    # Always on the search pool, never the event loop: FAISS releases the GIL, so
    # concurrent searches use every core while the loop keeps accepting requests.
    @_rpc("search")
    def Search(self, request: pb.SearchRequest) -> pb.SearchResponse:
        return self._search_group(self.reg.get(request.index), [request])[0]

    @_rpc("batch")
    def BatchSearch(self, request: pb.BatchSearchRequest) -> pb.BatchSearchResponse:
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
