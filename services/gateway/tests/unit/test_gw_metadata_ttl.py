"""The embedder client trusts a model version for a short TTL and asks again after an error."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.adapters import embedder as embedder_module
from gateway.adapters.embedder import EmbedderClient
from gateway.adapters.resilience import CallPolicy
from gateway.errors import NotFound


class Embedder:
    """TF Serving's REST surface: a served version, and a predict that may 404 (a reload)."""

    def __init__(self) -> None:
        self.version = "1"
        self.status_calls = 0
        self.predict_status = 200
        self.fail_status = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(":predict"):
            if self.predict_status != 200:
                return httpx.Response(self.predict_status, json={"error": "not loaded"})
            return httpx.Response(200, json={"predictions": [[1.0, 0.0]]})
        self.status_calls += 1
        if self.fail_status:
            return httpx.Response(503, json={"error": "overloaded"})
        status = [{"version": self.version, "state": "AVAILABLE"}]
        return httpx.Response(200, json={"model_version_status": status})


@pytest.fixture
def now(monkeypatch) -> list[float]:
    clock = [100.0]
    monkeypatch.setattr(embedder_module.time, "monotonic", lambda: clock[0])
    return clock


async def settle() -> None:
    """Lets background tasks run. Not asyncio.sleep(t > 0): ``now`` froze the loop's clock."""
    for _ in range(50):
        await asyncio.sleep(0)


async def test_version_is_trusted_for_the_ttl_then_refreshed(now) -> None:
    server = Embedder()
    client = EmbedderClient(
        "http://e", transport=httpx.MockTransport(server.handler), version_ttl_s=1.5
    )
    assert await client.model_version("m") == "1"
    server.version = "2"  # a new model version is loaded
    now[0] += 0.5
    assert await client.model_version("m") == "1" and server.status_calls == 1
    now[0] += 1.0  # the TTL bound: from here on the new version (and new cache keys)
    assert await client.model_version("m") == "2" and server.status_calls == 2
    await client.close()


async def test_version_past_half_its_ttl_is_refreshed_in_the_background(now) -> None:
    """The request that finds the version due is answered from the cache at once; one lookup
    runs beside it (however many requests see it due), and its answer is used next."""
    server = Embedder()
    client = EmbedderClient(
        "http://e", transport=httpx.MockTransport(server.handler), version_ttl_s=1.0
    )
    assert await client.model_version("m") == "1"
    server.version = "2"
    now[0] += 0.6
    answers = [await client.model_version("m") for _ in range(3)]
    assert answers == ["1", "1", "1"] and server.status_calls == 1  # nothing awaited the lookup
    await settle()  # the background lookup runs
    assert server.status_calls == 2
    assert await client.model_version("m") == "2" and server.status_calls == 2
    now[0] += 0.6  # due again: a failing lookup leaves the version to its TTL
    server.fail_status = True
    assert await client.model_version("m") == "2"
    await settle()
    assert server.status_calls == 3 and await client.model_version("m") == "2"
    await client.close()


async def test_an_embed_error_forgets_the_version(now) -> None:
    server = Embedder()
    client = EmbedderClient(
        "http://e",
        policy=CallPolicy(timeout_s=10.0, retries=0),
        transport=httpx.MockTransport(server.handler),
        version_ttl_s=60,
    )
    assert await client.model_version("m") == "1"
    server.version, server.predict_status = "2", 404
    with pytest.raises(NotFound):
        await client.embed("m", [b"img"])
    assert await client.model_version("m") == "2"  # asked again at once, not after 60 s
    server.predict_status = 200
    assert await client.embed("m", [b"img"]) == [[1.0, 0.0]]
    await client.close()


async def test_ttl_zero_asks_every_time(now) -> None:
    server = Embedder()
    client = EmbedderClient(
        "http://e", transport=httpx.MockTransport(server.handler), version_ttl_s=0
    )
    for _ in range(3):
        await client.model_version("m")
    assert server.status_calls == 3
    await client.close()
