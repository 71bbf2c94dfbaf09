"""Embed-then-search and more-like-this, with the cache in front of both."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.domain.keys import content_hash, search_key
from gateway.domain.ports import Cache, Embedder, VectorStore
from gateway.domain.timing import Timings
from gateway.domain.types import (
    Filters,
    IndexSummary,
    Recommendations,
    SearchOutcome,
    StoredItem,
    index_name,
)
from gateway.errors import DependencyUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass
class Recommender:
    embedder: Embedder
    store: VectorStore
    cache: Cache
    catalogues: Sequence[str]
    default_model: str
    cache_ttl_s: int = 300
    max_k: int = 100

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

    async def _generations(self, catalogues: list[str], model: str) -> dict[str, tuple[int, ...]]:
        """Generation per candidate index; in automatic mode, catalogues without one are skipped."""
        gens: dict[str, tuple[int, ...]] = {}
        for catalogue in catalogues:
            try:
                gens[catalogue] = await self.store.generation(index_name(catalogue, model))
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
            result = Recommendations.from_json(json.loads(blob))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a corrupt cache entry", extra={"key": key})
            return None
        result.cached = True
        return result

    async def _store(self, key: str, result: Recommendations, timings: Timings) -> None:
        if result.partial:
            return  # a partial answer must not hide the full one once every shard is back
        with timings.stage("cache"):
            await self.cache.set(key, json.dumps(result.to_json()).encode(), self.cache_ttl_s)

    async def search_image(
        self,
        image: bytes,
        *,
        catalogue: str | None,
        model: str | None,
        k: int,
        filters: Filters,
        timings: Timings,
    ) -> Recommendations:
        catalogues, model = self.validate_request(catalogue, model, k)
        version = await self.embedder.model_version(model)
        with timings.stage("generation"):
            gens = await self._generations(catalogues, model)
        key = search_key(
            kind="img",
            subject=content_hash(image),
            index=",".join(index_name(c, model) for c in gens),
            model_version=version,
            generation=tuple(g for c in gens for g in gens[c]),
            k=k,
            filters=filters,
        )
        if (hit := await self._cached(key, timings)) is not None:
            return hit
        with timings.stage("embed"):
            (vector,) = await self.embedder.embed(model, [image])
        best: tuple[str, SearchOutcome] | None = None
        for name in gens:
            with timings.stage("search"):
                outcome = await self.store.search(index_name(name, model), vector, k, filters)
            top = outcome.hits[0].score if outcome.hits else float("-inf")
            if best is None or top > (best[1].hits[0].score if best[1].hits else float("-inf")):
                best = (name, outcome)
        assert best is not None
        chosen, outcome = best
        result = Recommendations(
            items=outcome.hits,
            catalogue=chosen,
            model=model,
            model_version=version,
            index=index_name(chosen, model),
            index_generation=sum(outcome.generation),
            partial=outcome.partial,
        )
        await self._store(key, result, timings)
        return result

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
        self,
        item_id: str,
        *,
        catalogue: str | None,
        model: str | None,
        k: int,
        filters: Filters,
        timings: Timings,
    ) -> Recommendations:
        """More like this, from the stored vector: works while the embedder is down."""
        catalogues, model = self.validate_request(catalogue, model, k)
        if not catalogue:
            catalogue, _ = await self.find_item(item_id, None, model, with_vector=False)
        index = index_name(catalogue, model)
        with timings.stage("generation"):
            generation = await self.store.generation(index)
        key = search_key(
            kind="item",
            subject=item_id,
            index=index,
            model_version=None,  # stored vectors, not the live model, decide the answer
            generation=generation,
            k=k,
            filters=filters,
        )
        if (hit := await self._cached(key, timings)) is not None:
            return hit
        with timings.stage("search"):
            item = await self.store.get(index, item_id, with_vector=True)
            if item is None or item.vector is None:
                raise NotFound(f"item {item_id!r} not found in {index}", item_id=item_id)
            outcome = await self.store.search(index, item.vector, k, filters, exclude_id=item_id)
        result = Recommendations(
            items=outcome.hits,
            catalogue=catalogue,
            model=model,
            model_version=await self.model_version_or_none(model),
            index=index,
            index_generation=sum(outcome.generation),
            partial=outcome.partial,
        )
        await self._store(key, result, timings)
        return result

    async def model_version_or_none(self, model: str) -> str | None:
        try:
            return await self.embedder.model_version(model)
        except (DependencyUnavailable, NotFound):
            return None

    async def ingest(
        self, catalogue: str, models: Sequence[str], items: Sequence[tuple[str, bytes, dict]]
    ) -> int:
        """Embed ``(id, image, metadata)`` with each model and upsert; returns items written."""
        self.validate_request(catalogue, models[0] if models else None, 1)
        for model in models:
            vectors = await self.embedder.embed(model, [image for _, image, _ in items])
            index = index_name(catalogue, model)
            await self.store.ensure_index(index, len(vectors[0]))
            stored = [
                StoredItem(item_id, {k: str(v) for k, v in meta.items()}, list(vec))
                for (item_id, _, meta), vec in zip(items, vectors, strict=True)
            ]
            await self.store.upsert(index, stored)
        return len(items)

    async def delete(self, item_id: str, catalogue: str | None) -> list[str]:
        """Remove ``item_id`` from every model's index of the catalogue(s); NotFound if absent."""
        removed = []
        for summary in await self.store.list_indexes():
            if catalogue and summary.catalogue != catalogue:
                continue
            if await self.store.delete(summary.name, item_id):
                removed.append(summary.name)
        if not removed:
            raise NotFound(f"item {item_id!r} not found", item_id=item_id)
        return removed

    async def indexes(self) -> list[IndexSummary]:
        return await self.store.list_indexes()
