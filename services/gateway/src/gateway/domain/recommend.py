"""Embed-then-search and more-like-this, with the cache in front of both."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import orjson

from fashionrec_common.index_names import PART_NAME
from gateway.domain import routing
from gateway.domain.images import ImageLimits, check_image_async, check_size
from gateway.domain.keys import content_hash, search_key
from gateway.domain.ports import Cache, Embedder, VectorStore
from gateway.domain.timing import Timings
from gateway.domain.types import (
    IndexSummary,
    Recommendations,
    RecommendQuery,
    SearchOutcome,
    StoredItem,
    VectorQuery,
    index_name,
)
from gateway.errors import DependencyUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)
NAME = PART_NAME
Gen = tuple[int, ...]  # an index generation (VectorStore.generation)


@dataclass
class Recommender:
    embedder: Embedder
    store: VectorStore
    cache: Cache
    catalogues: Sequence[str]
    default_model: str
    cache_ttl_s: int = 300
    max_k: int = 100
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    generation_ttl_s: float = 1.0  # how long a looked-up index generation is trusted
    route_vote_k: int = routing.VOTE_K  # uploads without a catalogue: hits that vote
    # Uploads without a catalogue are routed by this model's indexes when set (one embed more):
    # the model that tells catalogues apart best need not be the one that ranks best.
    routing_model: str = ""
    clock: Callable[[], float] = time.monotonic
    _generations_seen: dict[str, tuple[float, Gen | None]] = field(
        default_factory=dict, init=False, repr=False
    )
    _generation_flights: dict[str, asyncio.Future[Gen]] = field(
        default_factory=dict, init=False, repr=False
    )
    _writes_seen: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def validate_request(
        self, catalogue: str | None, model: str | None, k: int
    ) -> tuple[list[str], str]:
        if not 1 <= k <= self.max_k:
            raise InvalidInput(f"k must be between 1 and {self.max_k}")
        if catalogue and catalogue not in self.catalogues:
            raise InvalidInput(f"unknown catalogue {catalogue!r}; known: {list(self.catalogues)}")
        model = model or self.default_model
        if not NAME.fullmatch(model):
            raise InvalidInput("model names are 1-64 letters, digits, '_', '-' or '.'")
        return ([catalogue] if catalogue else list(self.catalogues)), model

    async def _generation(self, index: str) -> tuple[int, ...]:
        """Trusted for ``generation_ttl_s``: a re-index elsewhere changes cache keys within it.

        Single flight: one lookup per index is in flight and every request waiting for it
        shares its answer (or its error). Refresh ahead: past half its TTL the answer is
        looked up again in the background while requests keep using it, so under steady
        load no request waits for a lookup.
        """
        seen = self._generations_seen.get(index)
        if seen and (age := self.clock() - seen[0]) < self.generation_ttl_s:
            if age >= self.generation_ttl_s / 2:
                self._generation_flight(index)  # not awaited: the answer below is still valid
            if seen[1] is None:  # "no such index" is remembered too (automatic mode asks often)
                raise NotFound(f"no index {index!r}")
            return seen[1]
        # a cancelled waiter does not cancel the others
        return await asyncio.shield(self._generation_flight(index))

    def _generation_flight(self, index: str) -> asyncio.Future[Gen]:
        flight = self._generation_flights.get(index)
        if flight is None:
            flight = asyncio.ensure_future(self._look_up_generation(index))
            self._generation_flights[index] = flight
            flight.add_done_callback(lambda f: self._landed(index, f))
        return flight

    def _landed(self, index: str, flight: asyncio.Future[Gen]) -> None:
        if self._generation_flights.get(index) is flight:
            del self._generation_flights[index]
        if not flight.cancelled():
            flight.exception()  # retrieved here, so an error nobody awaited is not logged

    def _forget_generation(self, index: str) -> None:
        """After a write: the next request looks again (a lookup in flight may predate it)."""
        self._generations_seen.pop(index, None)
        self._generation_flights.pop(index, None)
        self._writes_seen[index] = self._writes_seen.get(index, 0) + 1

    async def _look_up_generation(self, index: str) -> tuple[int, ...]:
        now, writes = self.clock(), self._writes_seen.get(index, 0)
        try:
            generation = await self.store.generation(index)
        except NotFound:
            if writes == self._writes_seen.get(index, 0):
                self._generations_seen[index] = (now, None)
            raise
        # Remembered unless one of our writes landed meanwhile.
        if writes == self._writes_seen.get(index, 0):
            self._generations_seen[index] = (now, generation)
        return generation

    def _still_current(
        self, index: str, generation: tuple[int, ...], seen: tuple[int, ...]
    ) -> bool:
        """False when the search saw another index than the key: forget it, do not cache."""
        if generation == seen:
            return True
        self._forget_generation(index)
        return False

    async def _generations(self, catalogues: list[str], model: str) -> dict[str, tuple[int, ...]]:
        """Generation per candidate index; in automatic mode, catalogues without one are skipped."""
        gens: dict[str, tuple[int, ...]] = {}
        for catalogue in catalogues:
            try:
                gens[catalogue] = await self._generation(index_name(catalogue, model))
            except NotFound:
                if len(catalogues) == 1:
                    raise
        if not gens:
            raise NotFound(f"no index for model {model!r} in {catalogues}")
        return gens

    async def _cached(self, key: str, timings: Timings) -> Recommendations | None:
        with timings.stage("cache"):
            blob = await self.cache.get(key)
        if blob is None:
            return None
        try:
            result = Recommendations.from_json(orjson.loads(blob))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a corrupt cache entry", extra={"key": key})
            return None
        result.cached = True
        return result

    async def _store(self, key: str, result: Recommendations, timings: Timings) -> None:
        if result.partial:
            return  # a partial answer must not hide the full one once the store is whole again
        with timings.stage("cache"):
            await self.cache.set(key, orjson.dumps(result.to_json()), self.cache_ttl_s)

    async def search_image(
        self, upload: bytes, query: RecommendQuery, timings: Timings
    ) -> Recommendations:
        """The cache is keyed by the raw upload and looked up before decoding: it is only
        filled after ``upload`` passed the image check, so a hit needs no second check."""
        check_size(upload, self.image_limits.max_bytes)
        catalogues, model = self.validate_request(query.catalogue, query.model, query.k)
        with timings.stage("generation"):  # no index for the model: an unknown model, 404
            gens = await self._generations(catalogues, model)
        async with self._served(model):  # indexed but not loaded: an outage, 503
            version = await self.embedder.model_version(model)
        router = await self._router(gens, model) if len(gens) > 1 else None
        key = search_key(
            kind="img",
            subject=content_hash(upload),
            index=",".join(index_name(c, model) for c in gens) + (router.key if router else ""),
            model_version=version,
            generation=tuple(g for c in gens for g in gens[c]),
            k=query.k,
            filters=query.filters,
        )
        if (hit := await self._cached(key, timings)) is not None:
            return hit
        with timings.stage("decode"):
            image = await check_image_async(upload, self.image_limits)
        searched = gens
        if router is not None:
            routed = await self._route(router, image, timings)
            searched = {routed: gens[routed]}
        with timings.stage("embed"):
            async with self._served(model):
                (vector,) = await self.embedder.embed(model, [image])
        depth = query.k if len(searched) == 1 else max(query.k, self.route_vote_k)
        outcomes: dict[str, SearchOutcome] = {}
        for name in searched:
            with timings.stage("search"):
                outcomes[name] = await self.store.search(
                    index_name(name, model), VectorQuery(vector, depth, query.filters)
                )
        chosen = (
            next(iter(searched))
            if len(searched) == 1
            else routing.vote(outcomes, self.route_vote_k)
        )
        outcome = outcomes[chosen]
        outcome = replace(outcome, hits=outcome.hits[: query.k])
        result = Recommendations(
            items=outcome.hits,
            catalogue=chosen,
            model=model,
            model_version=version,
            index=index_name(chosen, model),
            index_generation=sum(outcome.generation),
            partial=outcome.partial,
        )
        if self._still_current(result.index, outcome.generation, gens[chosen]):
            await self._store(key, result, timings)
        return result

    async def _router(self, gens: dict[str, Gen], model: str) -> routing.Router | None:
        """The routing model's indexes over the same catalogues, or None: route by ``model``.

        A routing model that is not indexed for every candidate catalogue, or not served, is
        skipped with a warning rather than failing the search: routing by the requested model
        still answers.
        """
        if not self.routing_model or self.routing_model == model:
            return None
        try:
            route_gens = await self._generations(list(gens), self.routing_model)
            version = await self.embedder.model_version(self.routing_model)
        except (NotFound, DependencyUnavailable) as exc:
            log.warning(
                "routing model %s unavailable (%s): routing by %s", self.routing_model, exc, model
            )
            return None
        if set(route_gens) != set(gens):
            log.warning(
                "routing model %s lacks an index for some of %s: routing by %s",
                self.routing_model,
                sorted(gens),
                model,
            )
            return None
        return routing.Router(self.routing_model, version, route_gens)

    async def _route(self, router: routing.Router, image: bytes, timings: Timings) -> str:
        """The catalogue the routing model's k-NN vote picks (no filters: they narrow results,
        not what the photo shows)."""
        with timings.stage("route"):
            async with self._served(router.model):
                (vector,) = await self.embedder.embed(router.model, [image])
            outcomes = {
                name: await self.store.search(
                    index_name(name, router.model), VectorQuery(vector, self.route_vote_k)
                )
                for name in router.generations
            }
        return routing.vote(outcomes, self.route_vote_k)

    async def find_item(
        self, item_id: str, catalogue: str | None, model: str, with_vector: bool
    ) -> tuple[str, StoredItem]:
        """The catalogue holding ``item_id`` in the ``model`` index, and the stored item."""
        catalogues, model = self.validate_request(catalogue, model, 1)
        for name in catalogues:
            try:
                item = await self.store.get(index_name(name, model), item_id, with_vector)
            except NotFound:
                if catalogue:
                    raise
                continue
            if item is not None:
                return name, item
        raise NotFound(f"item {item_id!r} not found", item_id=item_id)

    async def similar(
        self, item_id: str, query: RecommendQuery, timings: Timings
    ) -> Recommendations:
        """More like this, from the stored vector: works while the embedder is down."""
        _, model = self.validate_request(query.catalogue, query.model, query.k)
        catalogue = query.catalogue
        if not catalogue:
            catalogue, _ = await self.find_item(item_id, None, model, with_vector=False)
        index = index_name(catalogue, model)
        with timings.stage("generation"):
            generation = await self._generation(index)
        key = search_key(
            kind="item",
            subject=item_id,
            index=index,
            model_version=None,  # stored vectors, not the live model, decide the answer
            generation=generation,
            k=query.k,
            filters=query.filters,
        )
        if (hit := await self._cached(key, timings)) is not None:
            return hit
        with timings.stage("search"):
            item = await self.store.get(index, item_id, with_vector=True)
            if item is None or item.vector is None:
                raise NotFound(f"item {item_id!r} not found in {index}", item_id=item_id)
            outcome = await self.store.search(
                index, VectorQuery(item.vector, query.k, query.filters, exclude_id=item_id)
            )
        result = Recommendations(
            items=outcome.hits,
            catalogue=catalogue,
            model=model,
            model_version=await self.model_version_or_none(model),
            index=index,
            index_generation=sum(outcome.generation),
            partial=outcome.partial,
        )
        if self._still_current(index, outcome.generation, generation):
            await self._store(key, result, timings)
        return result

    @asynccontextmanager
    async def _served(self, model: str) -> AsyncIterator[None]:
        """For a model some index was built with: the embedder not knowing it means it was
        unloaded (a reload, an operator's mistake), which the caller cannot fix: 503."""
        try:
            yield
        except NotFound as exc:
            raise DependencyUnavailable("embedder", f"model {model!r} is not loaded") from exc

    async def model_version_or_none(self, model: str) -> str | None:
        try:
            return await self.embedder.model_version(model)
        except (DependencyUnavailable, NotFound):
            return None

    async def ingest(
        self, catalogue: str, models: Sequence[str], items: Sequence[tuple[str, bytes, dict]]
    ) -> int:
        """Embed ``(id, image, metadata)`` with each model and upsert; returns items written."""
        for model in models or [None]:
            self.validate_request(catalogue, model, 1)
        for model in models:
            vectors = await self.embedder.embed(model, [image for _, image, _ in items])
            index = index_name(catalogue, model)
            await self.store.ensure_index(index, len(vectors[0]))
            stored = [
                StoredItem(item_id, {k: str(v) for k, v in meta.items()}, list(vec))
                for (item_id, _, meta), vec in zip(items, vectors, strict=True)
            ]
            await self.store.upsert(index, stored)
            self._forget_generation(index)
        return len(items)

    async def delete(self, item_id: str, catalogue: str | None) -> list[str]:
        """Remove ``item_id`` from every model's index of the catalogue(s); NotFound if absent."""
        removed = []
        for summary in await self.store.list_indexes():
            if catalogue and summary.catalogue != catalogue:
                continue
            if await self.store.delete(summary.name, item_id):
                removed.append(summary.name)
                self._forget_generation(summary.name)
        if not removed:
            raise NotFound(f"item {item_id!r} not found", item_id=item_id)
        return removed

    async def indexes(self) -> list[IndexSummary]:
        return await self.store.list_indexes()
