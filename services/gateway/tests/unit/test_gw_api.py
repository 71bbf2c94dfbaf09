"""REST surface over fakes: status codes, error bodies, cache, guards, votes, metrics."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from fashionrec_common import compare_token
from gateway.config import GatewaySettings
from gateway.errors import RateLimited

from .conftest import make_services


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upload(data: bytes, **fields: str) -> dict:
    return {"files": {"image": ("q.png", data, "image/png")}, "data": fields}


async def test_search_by_upload_then_cached(rig, make_png) -> None:
    reply = await rig.client.post("/v1/search", **upload(make_png(3), catalogue="shoes", k="4"))
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["items"][0]["id"] == "3" and len(doc["items"]) == 4
    assert doc["items"][0]["image_url"] == "http://gw/v1/images/img/3.png"
    assert {"score", "distance", "metadata"} <= set(doc["items"][0])
    assert (doc["model"], doc["model_version"], doc["index"]) == ("infogan", "1", "shoes/infogan")
    assert doc["cached"] is False and doc["partial"] is False
    assert "embed;dur=" in reply.headers["server-timing"]
    again = await rig.client.post("/v1/search", **upload(make_png(3), catalogue="shoes", k="4"))
    assert again.json()["cached"] is True and rig.embedder.calls == 1
    metrics = (await rig.client.get("/metrics")).text
    assert 'gateway_cache_requests_total{result="hit"} 1.0' in metrics
    assert 'gateway_stage_seconds_count{operation="search",stage="embed"} 1.0' in metrics


async def test_search_by_base64_json_with_filters(rig, make_png) -> None:
    body = {
        "image_b64": base64.b64encode(make_png(5)).decode(),
        "k": 3,
        "filters": {"class": "heels"},
    }
    reply = await rig.client.post("/v1/search", json=body)
    assert reply.status_code == 200, reply.text
    assert [i["metadata"]["class"] for i in reply.json()["items"]] == ["heels"] * 3
    assert reply.json()["catalogue"] == "shoes"  # automatic


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"raw", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media"),
        ({"json": {"k": 3}}, 400, "invalid_input"),
        ({"json": {"image_b64": "!!!"}}, 400, "invalid_input"),
        ({"json": {"image_url": "http://169.254.169.254/x"}}, 400, "invalid_input"),
        ({"json": {"image_url": "h\x06ttp://x"}}, 400, "invalid_input"),
        ({"json": {"image_b64": base64.b64encode(b"GIF89a-garbage").decode()}}, 415, None),
        ({"files": {"image": ("x.pdf", b"%PDF-1.4", "application/pdf")}}, 415, None),
        ({"files": {"other": ("x", b"1", "image/png")}}, 400, "invalid_input"),
        # `curl -F image=@x '/v1/search?k=5'` must not answer with 10 items as if k were read
        (
            {"files": {"image": ("x.png", b"\x89PNG", "image/png")}, "params": {"k": 5}},
            400,
            "invalid_input",
        ),
    ],
)
async def test_search_rejects_bad_input(rig, kwargs, status, code) -> None:
    reply = await rig.client.post("/v1/search", **kwargs)
    assert reply.status_code == status, reply.text
    if code:
        assert reply.json()["error"]["code"] == code


async def test_upload_limit_is_enforced_while_streaming(rig) -> None:
    async def body():
        for _ in range(100):
            yield b"x" * 10_000  # 1 MB, over the 200 kB (+base64 slack) limit, no length header

    reply = await rig.client.post(
        "/v1/search", content=body(), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 413
    declared = await rig.client.post(
        "/v1/search", content=b"x" * 400_000, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413


async def test_embedder_down_503_but_similar_works(rig, make_png) -> None:
    rig.embedder.down = True
    reply = await rig.client.post("/v1/search", **upload(make_png(3), catalogue="shoes"))
    assert reply.status_code == 503
    assert reply.json()["error"] == {
        "code": "dependency_unavailable",
        "message": "embedder unavailable: connection refused",
        "dependency": "embedder",
    }
    similar = await rig.client.get("/v1/items/3/similar", params={"k": 2})
    assert similar.status_code == 200 and len(similar.json()["items"]) == 2
    ready = await rig.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["vector-search"] == "ok"


async def test_vector_search_down_503(rig, make_png) -> None:
    rig.store.down = True
    assert (await rig.client.get("/v1/items/3/similar")).status_code == 503
    reply = await rig.client.post("/v1/search", **upload(make_png(3), catalogue="shoes"))
    assert reply.status_code == 503 and reply.json()["error"]["dependency"] == "vector-search"


async def test_similar_errors(rig) -> None:
    assert (await rig.client.get("/v1/items/nope/similar")).status_code == 404
    bad = await rig.client.get("/v1/items/3/similar", params={"filters": "{oops"})
    assert bad.status_code == 400
    assert (await rig.client.get("/v1/items/3/similar", params={"k": 0})).status_code == 400


async def test_writes_need_a_key_and_ingest_delete_round_trip(rig, make_png) -> None:
    item = {
        "id": "new-1",
        "catalogue": "shoes",
        "image_b64": base64.b64encode(make_png(77)).decode(),
        "metadata": {"class": "flats", "image": "img/0.png"},
    }
    assert (await rig.client.post("/v1/items", json=item)).status_code == 401
    bad_key = await rig.client.post("/v1/items", json=item, headers={"X-API-Key": "nope"})
    assert bad_key.status_code == 401
    created = await rig.client.post("/v1/items", json=item, headers={"X-API-Key": "k2"})
    assert created.status_code == 201 and created.json()["indexes"] == ["shoes/infogan"]
    found = await rig.client.post("/v1/search", **upload(make_png(77), catalogue="shoes", k="1"))
    assert found.json()["items"][0]["id"] == "new-1"
    assert (await rig.client.delete("/v1/items/new-1")).status_code == 401
    gone = await rig.client.delete("/v1/items/new-1", headers={"X-API-Key": "k1"})
    assert gone.status_code == 200 and gone.json()["deleted_from"] == ["shoes/infogan"]
    again = await rig.client.delete("/v1/items/new-1", headers={"X-API-Key": "k1"})
    assert again.status_code == 404


async def test_batch_ingest_reports_progress(rig, make_png) -> None:
    lines = [
        json.dumps(
            {
                "id": f"b{i}",
                "catalogue": "handbags",
                "image_b64": base64.b64encode(make_png(100 + i)).decode(),
            }
        )
        for i in range(20)
    ]
    lines.append('{"id": "broken"}')
    lines.append(json.dumps({"id": "bad-img", "catalogue": "handbags", "image_b64": "aGVsbG8="}))
    reply = await rig.client.post(
        "/v1/items:batch",
        content="\n".join(lines).encode(),
        headers={"X-API-Key": "k1", "content-type": "application/x-ndjson"},
    )
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]
    await rig.services.jobs.wait()
    job = (await rig.client.get(f"/v1/jobs/{job_id}")).json()
    assert (job["total"], job["done"], job["failed"], job["progress"]) == (22, 20, 2, 1.0)
    assert job["state"] == "partial" and len(rig.store.indexes["handbags/infogan"]) == 20
    assert (await rig.client.get("/v1/jobs/unknown")).status_code == 404


async def test_compare_and_vote_forwarding(rig, settings) -> None:
    rig.store.indexes["shoes/mobilenet_v2"] = dict(rig.store.indexes["shoes/infogan"])
    rig.store.generations["shoes/mobilenet_v2"] = 1
    reply = await rig.client.get(
        "/v1/compare", params={"item_id": "4", "models": "infogan,mobilenet_v2", "k": 3}
    )
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert "infogan" not in json.dumps(doc["rows"]) and [r["row"] for r in doc["rows"]] == [1, 2]
    assert doc["query"]["id"] == "4" and doc["query"]["image_url"].endswith("/img/4.png")
    shown = compare_token.decode("s3cret", doc["token"], max_age_s=60)
    assert [list(r.items) for r in shown.rows] == [
        [i["id"] for i in row["items"]] for row in doc["rows"]
    ]
    vote = {"token": doc["token"], "choice": 1, "duration_ms": 900}
    sent = await rig.client.post(
        "/v1/votes", json=vote, headers={"Authorization": "Bearer annot-1"}
    )
    assert sent.status_code == 201 and sent.json()["echo"] == vote
    assert rig.votes.seen[0].headers["authorization"] == "Bearer annot-1"


async def test_models_catalogues_items_and_images(rig) -> None:
    models = (await rig.client.get("/v1/models")).json()
    assert models == [
        {
            "name": "infogan",
            "default": True,
            "catalogues": ["shoes"],
            "dimension": 8,
            "version": "1",
        }
    ]
    cats = (await rig.client.get("/v1/catalogues")).json()
    assert cats[0] == {"name": "shoes", "models": ["infogan"], "items": 12}
    page = (await rig.client.get("/v1/items", params={"catalogue": "shoes", "limit": 5})).json()
    assert page["total"] == 12 and len(page["items"]) == 5
    image = await rig.client.get("/v1/images/img/0.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    for bad in (
        "/v1/images/../secret.txt",
        "/v1/images/%2e%2e/secret.txt",
        "/v1/images/secret.txt",
    ):
        assert (await rig.client.get(bad)).status_code == 404, bad


async def test_health_and_openapi(rig) -> None:
    assert (await rig.client.get("/healthz")).json() == {"status": "ok"}
    ready = await rig.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["cache"] == "ok"
    spec = (await rig.client.get("/openapi.json")).json()
    body = spec["paths"]["/v1/search"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)


async def test_rate_limit_per_key(settings, fakes, make_png) -> None:
    from gateway.adapters.ratelimit import LocalRateLimiter

    embedder, store, votes = fakes
    limited = settings.model_copy(update={"rate_limit_per_minute": 3})
    services = make_services(limited, embedder, store, votes)
    assert isinstance(services.limiter, LocalRateLimiter) and services.limiter.per_minute == 3
    limiter = LocalRateLimiter(3, clock=lambda: 0.0)
    for _ in range(3):
        await limiter.hit("a")
    with pytest.raises(RateLimited, match="rate limit"):
        await limiter.hit("a")
    await limiter.hit("b")  # another principal has its own bucket


async def test_rate_limit_reply(rig) -> None:
    from gateway.adapters.ratelimit import LocalRateLimiter

    rig.services.limiter = LocalRateLimiter(2)
    codes = [(await rig.client.get("/v1/catalogues")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_settings_require_secrets_outside_dev(monkeypatch) -> None:
    monkeypatch.delenv("GATEWAY_API_KEYS", raising=False)
    with pytest.raises(ValueError, match="GATEWAY_API_KEYS"):
        GatewaySettings(vote_token_secret="x")
    dev = GatewaySettings(dev=True)
    assert len(dev.api_keys) == 1 and dev.vote_token_secret is not None
    monkeypatch.setenv("GATEWAY_VECTOR_SEARCH_ADDRESS", "vs:50051")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/3")
    s = GatewaySettings(dev=True)
    assert s.vector_search_address == "vs:50051" and s.redis_url == "redis://h:6379/3"


def test_settings_refuse_the_removed_shard_list(monkeypatch) -> None:
    """Multi-shard FAISS is gone: an old deployment's shard list stops the start, by name."""
    monkeypatch.setenv("GATEWAY_VECTOR_SEARCH_SHARDS", "a:1,b:2")
    with pytest.raises(ValueError, match="GATEWAY_VECTOR_SEARCH_ADDRESS.*GATEWAY_VECTOR_STORE"):
        GatewaySettings(dev=True)
    monkeypatch.setenv("GATEWAY_VECTOR_SEARCH_SHARDS", "a:1")  # even a single entry
    with pytest.raises(ValueError, match="GATEWAY_VECTOR_SEARCH_SHARDS is gone"):
        GatewaySettings(dev=True)


def test_settings_workers_auto_and_refusals(monkeypatch) -> None:
    """One process unless asked; auto (0) is one per core, at most 4, only where processes
    can share state; more than one without that is refused at start, by name."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert GatewaySettings(dev=True).worker_count(8) == 1
    local = GatewaySettings(dev=True, workers=0)
    assert local.worker_count(8) == 1  # in-process cache and jobs: one process
    shared = GatewaySettings(dev=True, redis_url="redis://h:6379/0", workers=0)
    assert [shared.worker_count(c) for c in (1, 2, 16)] == [1, 2, 4]
    assert GatewaySettings(dev=True, redis_url="redis://h", workers=6).worker_count(2) == 6
    lite = GatewaySettings(dev=True, redis_url="redis://h", vector_store="milvus", workers=0)
    assert lite.milvus_lite and lite.worker_count(8) == 1
    server = GatewaySettings(
        dev=True,
        redis_url="redis://h",
        vector_store="milvus",
        milvus_uri="http://m:19530",
        workers=0,
    )
    assert server.worker_count(8) == 4
    with pytest.raises(ValueError, match="GATEWAY_WORKERS > 1 needs REDIS_URL"):
        GatewaySettings(dev=True, workers=2)
    with pytest.raises(ValueError, match="cannot share Milvus Lite"):
        GatewaySettings(dev=True, redis_url="redis://h", vector_store="milvus", workers=2)


async def test_lifespan_closes_jobs(rig) -> None:
    await asyncio.sleep(0)
    assert await rig.services.jobs.get("x") is None
