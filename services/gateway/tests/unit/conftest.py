"""Fakes for the gateway's ports (unit tests only) and an app wired to them."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from PIL import Image

from gateway.adapters.annotation import AnnotationClient
from gateway.adapters.cache import LruCache
from gateway.config import GatewaySettings
from gateway.domain.images import ImageLimits
from gateway.domain.jobs import Jobs
from gateway.domain.recommend import Recommender
from gateway.domain.types import Hit, IndexSummary, SearchOutcome, StoredItem, VectorQuery
from gateway.errors import DependencyUnavailable, NotFound
from gateway.metrics import GatewayMetrics
from gateway.transport.rest.app import create_app
from gateway.wiring import Services

DIM = 8


def vector_of(data: bytes) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(data).digest()[:4], "big")
    v = np.random.default_rng(seed).standard_normal(DIM)
    return (v / np.linalg.norm(v)).tolist()


def png(seed: int = 0, size: int = 16, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


@dataclass
class FakeEmbedder:
    version: str = "1"
    down: bool = False
    calls: int = 0

    async def model_version(self, model: str) -> str:
        if self.down:
            raise DependencyUnavailable("embedder", "connection refused")
        return self.version

    async def embed(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        if self.down:
            raise DependencyUnavailable("embedder", "connection refused")
        self.calls += 1
        return [vector_of(img) for img in images]

    async def check(self, model: str) -> None:
        await self.model_version(model)

    async def close(self) -> None:
        pass


@dataclass
class FakeStore:
    """An in-memory vector store; ``partial`` simulates a store answering from part of an index."""

    indexes: dict[str, dict[str, StoredItem]] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    down: bool = False
    partial: bool = False
    searches: int = 0

    def _index(self, index: str) -> dict[str, StoredItem]:
        if self.down:
            raise DependencyUnavailable("vector-search", "connection refused")
        if index not in self.indexes:
            raise NotFound(f"no index {index!r}")
        return self.indexes[index]

    async def generation(self, index: str) -> tuple[int, ...]:
        self._index(index)
        return (self.generations[index],)

    async def search(self, index: str, query: VectorQuery) -> SearchOutcome:
        self.searches += 1
        items = self._index(index).values()
        ips = {i.id: float(np.dot(query.vector, i.vector)) for i in items}
        hits = [
            Hit(i.id, ips[i.id], ips[i.id], i.metadata)
            for i in items
            if all(i.metadata.get(key) in vals for key, vals in query.filters.items())
        ]
        best = sorted((h for h in hits if h.id != query.exclude_id), key=lambda h: (-h.score, h.id))
        return SearchOutcome(best[: query.k], (self.generations[index],), self.partial)

    async def get(self, index: str, item_id: str, with_vector: bool) -> StoredItem | None:
        return self._index(index).get(item_id)

    async def upsert(self, index: str, items: Sequence[StoredItem]) -> None:
        for item in items:
            self._index(index)[item.id] = item
        self.generations[index] += 1

    async def delete(self, index: str, item_id: str) -> bool:
        found = self._index(index).pop(item_id, None) is not None
        self.generations[index] += found
        return found

    async def ensure_index(self, index: str, dimension: int) -> None:
        if self.down:
            raise DependencyUnavailable("vector-search", "connection refused")
        self.indexes.setdefault(index, {})
        self.generations.setdefault(index, 0)

    async def list_indexes(self) -> list[IndexSummary]:
        if self.down:
            raise DependencyUnavailable("vector-search", "connection refused")
        return [
            IndexSummary(n, DIM, len(items), self.generations[n])
            for n, items in sorted(self.indexes.items())
        ]

    async def list_items(self, index, offset, limit, filters):
        items = list(self._index(index).values())
        return items[offset : offset + limit], len(items)

    async def check(self) -> None:
        if self.down:
            raise RuntimeError("down")

    async def close(self) -> None:
        return None


def seed_store(store: FakeStore, n: int = 12, model: str = "infogan") -> None:
    """Items 0..n-1 in shoes/<model>, vectors from png(i), alternating classes."""
    name = f"shoes/{model}"
    store.indexes[name] = {}
    store.generations[name] = 1
    for i in range(n):
        meta = {
            "category": "shoes",
            "class": "heels" if i % 2 else "flats",
            "image": f"img/{i}.png",
        }
        store.indexes[name][str(i)] = StoredItem(str(i), meta, vector_of(png(i)))


@dataclass
class Votes:
    seen: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(201, json={"ok": True, "echo": json.loads(request.content)})


def make_services(settings: GatewaySettings, embedder, store, votes: Votes) -> Services:
    metrics = GatewayMetrics()
    cache = LruCache(100, metrics.observe_cache)
    recommender = Recommender(
        embedder,
        store,
        cache,
        settings.catalogues,
        settings.default_model,
        image_limits=ImageLimits(
            settings.max_upload_bytes, settings.max_pixels, settings.decode_timeout_s
        ),
    )
    annotation = AnnotationClient("http://annotation", transport=httpx.MockTransport(votes.handler))
    return Services(settings, metrics, embedder, store, cache, annotation, recommender, Jobs())  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path) -> GatewaySettings:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "0.png").write_bytes(png(0))
    (tmp_path / "secret.txt").write_text("no")
    return GatewaySettings(
        api_keys="k1,k2",
        vote_token_secret="s3cret",
        catalog_dir=tmp_path,
        max_upload_bytes=200_000,
        max_pixels=1_000_000,
        rate_limit_per_minute=0,
    )


@dataclass
class Rig:
    client: httpx.AsyncClient
    embedder: FakeEmbedder
    store: FakeStore
    votes: Votes
    services: Services


@pytest.fixture
async def rig(settings) -> AsyncIterator[Rig]:
    embedder, store, votes = FakeEmbedder(), FakeStore(), Votes()
    seed_store(store)
    services = make_services(settings, embedder, store, votes)
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield Rig(client, embedder, store, votes, services)


@pytest.fixture
def make_png():
    return png


@pytest.fixture
def fakes():
    """(embedder, seeded store, votes) for domain-level tests."""
    store = FakeStore()
    seed_store(store)
    return FakeEmbedder(), store, Votes()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recommender(fakes, clock) -> Recommender:
    embedder, store, _ = fakes
    return Recommender(
        embedder, store, LruCache(100), ["shoes", "handbags"], "infogan", clock=clock
    )
