"""Server assembly: registry, thread pools, gRPC server, background snapshot and fsync loops."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

import faiss
from prometheus_client import CollectorRegistry

from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import bind, token_auth
from fashionrec_common.grpc_server import build_server as build_grpc_server
from fashionrec_common.health import SERVING
from vector_search.config import VectorSearchSettings
from vector_search.index.managed import IndexOptions, SnapshotPolicy
from vector_search.index.registry import IndexRegistry
from vector_search.metrics import front_calls, request_latency
from vector_search.native.front import open_front
from vector_search.native.mirror import NativeMirror
from vector_search.transport.servicer import VectorSearchServicer

log = logging.getLogger(__name__)
SERVICE = "fashionrec.vectorsearch.v1.VectorSearch"


def _single_thread_omp() -> None:
    """Single queries run on one OpenMP thread: no thread-team overhead, no oversubscription."""
    faiss.omp_set_num_threads(1)


class VectorSearchServer:
    """The running service; ``start`` loads the data directory, ``stop`` snapshots."""

    def __init__(self, settings: VectorSearchSettings, metrics: CollectorRegistry | None) -> None:
        self.settings = settings
        self.native = open_front(settings.native, settings.native_lib)
        options = IndexOptions(
            fsync=settings.fsync,
            max_vectors=settings.max_vectors_per_index,
            use_gpu=settings.use_gpu,
            mirrors=functools.partial(NativeMirror, self.native) if self.native else None,
        )
        self.registry = IndexRegistry(settings.data_dir, options)
        self.pools = {
            "search": ThreadPoolExecutor(settings.search_threads, "vs-search", _single_thread_omp),
            "batch": ThreadPoolExecutor(2, "vs-batch"),
            "write": ThreadPoolExecutor(settings.write_threads, "vs-write"),
            # its own thread: a snapshot of a big index must not hold a write thread
            "snapshot": ThreadPoolExecutor(1, "vs-snapshot"),
        }
        latency = request_latency(metrics)
        if self.native is not None:
            front_calls(self.native.stats, metrics)
        self.server, self.health = build_grpc_server(
            [SERVICE], token_auth(settings.auth_tokens, "vector-search")
        )
        pb_grpc.add_VectorSearchServicer_to_server(
            VectorSearchServicer(self.registry, settings, self.pools, latency), self.server
        )
        self.port = 0
        self._socket_dir: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        _single_thread_omp()  # inline (cheap) searches run on this, the event loop's thread
        await asyncio.get_running_loop().run_in_executor(
            self.pools["write"], self.registry.open_all
        )
        address = f"{self.settings.host}:{self.settings.port}"
        if self.native is None:
            self.port = bind(self.server, address, self.settings.tls)
            await self.server.start()
        else:  # grpcio behind the front, which takes the public port; on a Unix socket in a
            # private (0700) directory, so only this process's front reaches it and no TCP
            # port but the public one is open
            self._socket_dir = tempfile.mkdtemp(prefix="vector-search-")
            backend = f"unix:{self._socket_dir}/grpc.sock"
            bind(self.server, backend, None)
            await self.server.start()
            self.port = self.native.serve(
                address,
                backend,
                self.settings.search_threads,
                [t.get_secret_value() for t in self.settings.auth_tokens],
                self.settings.tls,
                self.settings.max_k,
            )
        await self.health.set(SERVICE, SERVING)  # type: ignore[attr-defined]
        await self.health.set("", SERVING)  # type: ignore[attr-defined]
        self._tasks = [asyncio.create_task(self._snapshot_loop())]
        if self.settings.fsync == "batch":
            self._tasks.append(asyncio.create_task(self._fsync_loop()))
        log.info(
            "vector-search serving",
            extra={
                "port": self.port,
                "data_dir": str(self.settings.data_dir),
                "search": "native front" if self.native else "python",
            },
        )
        return self.port

    async def _snapshot_loop(self) -> None:
        loop = asyncio.get_running_loop()
        policy = SnapshotPolicy(
            self.settings.snapshot_min_writes,
            self.settings.snapshot_min_fraction,
            self.settings.snapshot_max_age_s,
        )
        while True:
            await asyncio.sleep(self.settings.snapshot_interval_s)
            await loop.run_in_executor(self.pools["snapshot"], self.registry.snapshot_all, policy)

    async def _fsync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.fsync_interval_s)
            await loop.run_in_executor(self.pools["write"], self.registry.sync_all)

    async def stop(self, grace_s: float | None = 5.0) -> None:
        """Stop serving: the front first (its forwarded calls still reach Python), then grpcio."""
        if self.native is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.native.stop, grace_s or 0)
        await self.server.stop(grace_s)

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop serving (if still up), write final snapshots, release threads."""
        await self.stop(grace_s)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.get_running_loop().run_in_executor(self.pools["write"], self.registry.close)
        for pool in self.pools.values():
            pool.shutdown(wait=False)
        if self.native is not None:
            self.native.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)


def build_server(
    settings: VectorSearchSettings, metrics: CollectorRegistry | None = None
) -> VectorSearchServer:
    """Factory: nothing runs until ``start``. Tests pass their own metrics registry."""
    return VectorSearchServer(settings, metrics)


__all__ = ["VectorSearchServer", "build_server"]
