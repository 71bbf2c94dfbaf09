"""Milvus behind the VectorStore port: one collection per ``<catalogue>/<model>`` index.

Collections, not partitions of one collection: indexes differ in dimension (one per model),
and a collection has one vector field of one dimension. Each collection also gets its own
index parameters, load/release and drop, and a search never scans another index's rows.

Scores match the FAISS service: inner product (``distance``, larger is nearer) and
``score = (ip + 1) / 2`` clipped to [0, 1]. pymilvus is blocking: every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import SecretStr
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.exceptions import (
    DataNotMatchException,
    DataTypeNotMatchException,
    ErrorCode,
    ParamError,
    PrimaryKeyException,
)

from gateway.adapters.milvus_names import (
    MAX_COLLECTION_NAME,
    PREFIX,
    collection_name,
    filter_expr,
    ids_expr,
    index_of_collection,
    matches_nothing,
    search_expr,
)
from gateway.domain.types import Filters, Hit, IndexSummary, SearchOutcome, StoredItem, VectorQuery
from gateway.errors import DependencyUnavailable, GatewayError, InvalidInput, NotFound

log = logging.getLogger(__name__)
T = TypeVar("T")
DEPENDENCY = "milvus"
BATCH = 1000  # rows per query/upsert call (Milvus caps a query window at 16,384)
MAX_ID_BYTES = 512
MAX_DIMENSION = 32_768  # Milvus' limit for FLOAT_VECTOR
_INVALID = (ParamError, DataTypeNotMatchException, DataNotMatchException, PrimaryKeyException)


@dataclass(frozen=True)
class HnswParams:
    """HNSW build and search parameters (GATEWAY_MILVUS_INDEX=HNSW, GATEWAY_MILVUS_HNSW_*)."""

    kind: ClassVar[str] = "HNSW"
    m: int = 16
    ef_construction: int = 200
    ef: int = 64

    def build(self) -> dict[str, int]:
        return {"M": self.m, "efConstruction": self.ef_construction}

    def search(self, k: int, widen: bool) -> dict[str, Any]:
        """``widen``: the retry when a filtered search came back short (see ``search``)."""
        ef = max(self.ef, k)
        return {"params": {"ef": max(8 * ef, 512) if widen else ef}}


@dataclass(frozen=True)
class IvfFlatParams:
    """IVF_FLAT build and search parameters (GATEWAY_MILVUS_IVF_*)."""

    kind: ClassVar[str] = "IVF_FLAT"
    nlist: int = 1024
    nprobe: int = 32

    def build(self) -> dict[str, int]:
        return {"nlist": self.nlist}

    def search(self, k: int, widen: bool) -> dict[str, Any]:
        """``widen`` probes every list, which is exact for IVF_FLAT."""
        return {"params": {"nprobe": self.nlist if widen else min(self.nprobe, self.nlist)}}


MilvusIndexParams = HnswParams | IvfFlatParams


def _score(ip: float) -> float:
    return min(1.0, max(0.0, (ip + 1.0) / 2.0))


def _release_lite(path: str) -> None:
    """Milvus Lite keeps a server (and the file's lock) per file until the process exits;
    closing the store releases it, so the file can be opened again (ingest, then serve)."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)


def _is_file(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("unix:")


def _mapped(exc: MilvusException) -> GatewayError:
    if exc.code == ErrorCode.COLLECTION_NOT_FOUND or "not exist" in str(exc.message):
        return NotFound(str(exc.message))
    if isinstance(exc, _INVALID):
        return InvalidInput(str(exc.message))
    return DependencyUnavailable(DEPENDENCY, f"{exc.code}: {exc.message}")


class MilvusStore:
    """A file URI runs Milvus Lite (embedded, one process); ``http://host:19530`` a server.

    Index generations: Milvus keeps no per-collection write counter, so this adapter keeps
    one per index in the ``<prefix>_generations`` collection and moves it after every
    upsert and delete it makes. Writes made to the collections by other clients do not move
    it: cached answers then live until their TTL.
    """

    def __init__(
        self,
        uri: str,
        *,
        token: str | SecretStr | None = None,
        prefix: str = "fashionrec_",
        index: MilvusIndexParams | None = None,
        consistency: str = "Strong",
        timeout_s: float = 2.0,
    ) -> None:
        if not PREFIX.match(prefix):
            raise ValueError(f"bad collection prefix {prefix!r}: {PREFIX.pattern}")
        self.uri = uri
        self._token = token.get_secret_value() if isinstance(token, SecretStr) else token or ""
        self.prefix = prefix
        self.index = index or HnswParams()
        self.consistency = consistency
        self.timeout_s = timeout_s
        self.generations = f"{prefix}_generations"  # never decodes as an index name
        self._client: MilvusClient | None = None
        self._lock = threading.Lock()
        self._dims: dict[str, int] = {}
        self._loaded: set[str] = set()
        self._generations_ready = False
        self._last_seq = 0

    # ---- plumbing ----

    def _connect(self) -> MilvusClient:
        """Lazily, so the gateway starts (and reports not ready) while Milvus is down."""
        with self._lock:
            if self._client is None:
                if _is_file(self.uri):
                    Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
                self._client = MilvusClient(uri=self.uri, token=self._token, timeout=self.timeout_s)
            return self._client

    async def _call(self, fn: Callable[[MilvusClient], T]) -> T:
        """Runs ``fn`` off the event loop; Milvus errors become domain errors here only."""

        def run() -> T:
            return fn(self._connect())

        try:
            return await asyncio.to_thread(run)
        except GatewayError:
            raise
        except MilvusException as exc:
            raise _mapped(exc) from exc
        except (OSError, RuntimeError) as exc:
            raise DependencyUnavailable(DEPENDENCY, str(exc)) from exc

    def _name(self, index: str) -> str:
        try:
            return collection_name(index, self.prefix)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc

    def _load(self, c: MilvusClient, coll: str) -> None:
        """Once per collection and process: a collection made by another process (the
        ingest CLI, another replica) or reopened from a Milvus Lite file is 'released', and
        Milvus refuses search, get and query on it. Loading a loaded one is a no-op."""
        if coll not in self._loaded:
            c.load_collection(coll)
            self._loaded.add(coll)

    def _dimension(self, c: MilvusClient, coll: str) -> int:
        """The collection's vector dimension; NotFound when there is no such collection."""
        if coll not in self._dims:
            try:
                desc = c.describe_collection(coll)
            except MilvusException as exc:
                if isinstance(_mapped(exc), NotFound):
                    index = index_of_collection(coll, self.prefix)
                    raise NotFound(f"no index {index!r}") from exc
                raise
            field = next(f for f in desc["fields"] if f["name"] == "vector")
            self._load(c, coll)
            self._dims[coll] = int(field["params"]["dim"])
        return self._dims[coll]

    def _check_vector(self, vector: Sequence[float] | None, dim: int) -> list[float]:
        if vector is None or len(vector) != dim:
            got = "none" if vector is None else len(vector)
            raise InvalidInput(f"vector dimension must be {dim}, got {got}")
        return [float(x) for x in vector]

    def _count(self, c: MilvusClient, coll: str, expr: str) -> int:
        rows = c.query(coll, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # ---- generations ----

    def _generations_collection(self, c: MilvusClient) -> str:
        if not self._generations_ready:
            if not c.has_collection(self.generations):
                schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field(
                    "id", DataType.VARCHAR, is_primary=True, max_length=MAX_COLLECTION_NAME
                )
                schema.add_field("gen", DataType.INT64)
                schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus requires one
                params = c.prepare_index_params()
                params.add_index(field_name="v", index_type="FLAT", metric_type="L2")
                c.create_collection(
                    self.generations,
                    schema=schema,
                    index_params=params,
                    consistency_level="Strong",
                )
            self._load(c, self.generations)
            self._generations_ready = True
        return self.generations

    def _read_generation(self, c: MilvusClient, coll: str) -> int | None:
        rows = c.query(
            self._generations_collection(c),
            filter=ids_expr([coll]),
            output_fields=["gen"],
            consistency_level="Strong",
        )
        return int(rows[0]["gen"]) if rows else None

    def _bump(self, c: MilvusClient, coll: str) -> None:
        """A fresh value, not prev + 1: two replicas writing at once must not both land on
        the same number (read-modify-write is not atomic in Milvus), so it is at least the
        wall clock in microseconds, and always above the previous value."""
        prev = self._read_generation(c, coll) or 0
        gen = max(prev + 1, time.time_ns() // 1000)
        c.upsert(self._generations_collection(c), [{"id": coll, "gen": gen, "v": [0.0, 0.0]}])

    def _next_seq(self, n: int) -> int:
        """Insertion order for list_items (nanoseconds; monotonic within this process)."""
        with self._lock:
            base = max(time.time_ns(), self._last_seq + 1)
            self._last_seq = base + n
            return base

    # ---- VectorStore ----

    async def generation(self, index: str) -> tuple[int, ...]:
        coll = self._name(index)

        def run(c: MilvusClient) -> tuple[int, ...]:
            gen = self._read_generation(c, coll)
            if gen is None:
                if not c.has_collection(coll):
                    raise NotFound(f"no index {index!r}")
                gen = 0
            return (gen,)

        return await self._call(run)

    async def ensure_index(self, index: str, dimension: int) -> None:
        coll = self._name(index)
        if not 1 <= dimension <= MAX_DIMENSION:
            raise InvalidInput(f"dimension must be in 1..{MAX_DIMENSION}")

        def run(c: MilvusClient) -> None:
            if c.has_collection(coll):
                have = self._dimension(c, coll)
                if have != dimension:
                    raise InvalidInput(f"index {index} has dimension {have}, not {dimension}")
                return
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            schema.add_field("meta", DataType.JSON)
            schema.add_field("seq", DataType.INT64)
            params = c.prepare_index_params()
            params.add_index(
                field_name="vector",
                index_type=self.index.kind,
                metric_type="IP",
                params=self.index.build(),
            )
            c.create_collection(
                coll, schema=schema, index_params=params, consistency_level=self.consistency
            )
            self._dims[coll] = dimension
            log.info("created milvus collection", extra={"index": index, "collection": coll})

        await self._call(run)

    async def upsert(self, index: str, items: Sequence[StoredItem]) -> None:
        coll = self._name(index)
        latest = {it.id: it for it in items}  # one row per id; the last one wins
        for item_id in latest:
            if not item_id or len(item_id.encode()) > MAX_ID_BYTES:
                raise InvalidInput(f"item ids are 1-{MAX_ID_BYTES} bytes")

        def run(c: MilvusClient) -> None:
            dim = self._dimension(c, coll)
            vectors = {i: self._check_vector(it.vector, dim) for i, it in latest.items()}
            ids = list(latest)
            seqs: dict[str, int] = {}
            for start in range(0, len(ids), BATCH):  # a replaced item keeps its place
                rows = c.query(
                    coll, filter=ids_expr(ids[start : start + BATCH]), output_fields=["id", "seq"]
                )
                seqs.update((r["id"], int(r["seq"])) for r in rows)
            fresh = [i for i in ids if i not in seqs]
            base = self._next_seq(len(fresh))
            seqs.update((i, base + n) for n, i in enumerate(fresh))
            rows = [
                {"id": i, "vector": vectors[i], "meta": dict(latest[i].metadata), "seq": seqs[i]}
                for i in ids
            ]
            for start in range(0, len(rows), BATCH):
                c.upsert(coll, rows[start : start + BATCH])
            self._bump(c, coll)

        if latest:
            await self._call(run)

    async def delete(self, index: str, item_id: str) -> bool:
        coll = self._name(index)
        expr = ids_expr([item_id])

        def run(c: MilvusClient) -> bool:
            # Milvus reports every requested id as deleted, present or not: look first.
            self._dimension(c, coll)  # NotFound for an unknown index; loads the collection
            if not c.query(coll, filter=expr, output_fields=["id"], limit=1):
                return False
            c.delete(coll, filter=expr)
            self._bump(c, coll)
            return True

        return await self._call(run)

    async def get(self, index: str, item_id: str, with_vector: bool) -> StoredItem | None:
        coll = self._name(index)
        fields = ["id", "meta", "vector"] if with_vector else ["id", "meta"]

        def run(c: MilvusClient) -> StoredItem | None:
            self._dimension(c, coll)  # NotFound for an unknown index; loads the collection
            rows = c.query(coll, filter=ids_expr([item_id]), output_fields=fields, limit=1)
            if not rows:
                return None
            row = rows[0]
            vector = [float(x) for x in row["vector"]] if with_vector else None
            return StoredItem(row["id"], dict(row["meta"]), vector)

        return await self._call(run)

    async def search(self, index: str, query: VectorQuery) -> SearchOutcome:
        """Filters and the excluded id go into the search itself (Milvus pre-filters), so k
        hits come back whenever k items match. An ANN index can still come back short on a
        rare value (IVF probes only nprobe lists): then, when more items match than came
        back, the search runs once more with exhaustive parameters."""
        coll = self._name(index)
        nothing = matches_nothing(query.filters)
        expr = "" if nothing else search_expr(query.filters, query.exclude_id)

        def run(c: MilvusClient) -> SearchOutcome:
            vector = self._check_vector(query.vector, self._dimension(c, coll))
            gen = self._read_generation(c, coll) or 0  # before the search: see docs
            if nothing:
                return SearchOutcome([], (gen,))
            hits = self._search(c, coll, vector, query.k, expr, widen=False)
            if len(hits) < query.k and self._count(c, coll, expr) > len(hits):
                hits = self._search(c, coll, vector, query.k, expr, widen=True)
            return SearchOutcome(hits, (gen,))

        return await self._call(run)

    def _search(
        self, c: MilvusClient, coll: str, query: list[float], k: int, expr: str, widen: bool
    ) -> list[Hit]:
        result = c.search(
            coll,
            data=[query],
            limit=k,
            filter=expr,
            output_fields=["meta"],
            search_params=self.index.search(k, widen),
            anns_field="vector",
        )
        hits = [
            Hit(
                h["id"],
                _score(float(h["distance"])),
                float(h["distance"]),
                dict(h["entity"]["meta"]),
            )
            for h in result[0]
        ]
        return sorted(hits, key=lambda h: -h.distance)

    async def list_indexes(self) -> list[IndexSummary]:
        def run(c: MilvusClient) -> list[IndexSummary]:
            out = []
            for coll in c.list_collections():
                index = index_of_collection(coll, self.prefix)
                if index is None:
                    continue
                dim = self._dimension(c, coll)
                gen = self._read_generation(c, coll) or 0
                out.append(IndexSummary(index, dim, self._count(c, coll, ""), gen))
            return sorted(out, key=lambda s: s.name)

        return await self._call(run)

    async def list_items(
        self, index: str, offset: int, limit: int, filters: Filters
    ) -> tuple[list[StoredItem], int]:
        """Pages in insertion order. Milvus has no ORDER BY for queries (Lite ignores
        ``order_by_fields``), so the (seq, id) pairs of every matching item are read and
        sorted here: O(matching items) per page, fine for an admin listing."""
        coll = self._name(index)
        nothing = matches_nothing(filters)
        expr = filter_expr(filters) if filters and not nothing else ""

        def run(c: MilvusClient) -> tuple[list[StoredItem], int]:
            self._dimension(c, coll)  # NotFound for an unknown index
            if nothing:
                return [], 0
            keys: list[tuple[int, str]] = []
            it = c.query_iterator(coll, batch_size=BATCH, filter=expr, output_fields=["id", "seq"])
            try:
                while batch := it.next():
                    keys.extend((int(r["seq"]), r["id"]) for r in batch)
            finally:
                it.close()
            keys.sort()
            page = [i for _, i in keys[offset : offset + limit]]
            metas: dict[str, dict[str, str]] = {}
            if page:
                rows = c.query(coll, filter=ids_expr(page), output_fields=["id", "meta"])
                metas = {r["id"]: dict(r["meta"]) for r in rows}
            return [StoredItem(i, metas[i]) for i in page if i in metas], len(keys)

        return await self._call(run)

    async def check(self) -> None:
        await self._call(lambda c: c.list_collections())

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)
        if client is not None and _is_file(self.uri):
            await asyncio.to_thread(_release_lite, self.uri)
