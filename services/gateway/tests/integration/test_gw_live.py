"""The gateway against the real embedder server, a real vector-search and the real Redis."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from fashionrec.recommend.v1 import recommend_pb2 as rpb
from fashionrec.recommend.v1 import recommend_pb2_grpc as rpb_grpc
from fashionrec_common import compare_token
from fashionrec_testing.supervisor import free_port
from gateway.transport.grpc_api import start_grpc

from .conftest import REDIS, Gateway, b64, gw_settings, image, ingest_env, write_catalog

pytestmark = pytest.mark.integration
KEY = {"X-API-Key": "test-key"}


@pytest.fixture
def live_gateway(embedder_url: str, vector_search: str, make_gateway):
    """``await live_gateway(**settings)`` -> a gateway on the live embedder and vector-search
    (a setting given replaces either, e.g. to point at a closed port)."""

    async def make(**overrides: object) -> Gateway:
        live = {"embedder_url": embedder_url, "vector_search_address": vector_search}
        return await make_gateway(gw_settings(**(live | overrides)))

    return make


def upload(data: bytes, **fields: str) -> dict:
    return {"files": {"image": ("q.png", data, "image/png")}, "data": fields}


async def ingest_rest(gw, catalogue: str, seeds: range) -> None:
    for seed in seeds:
        item = {
            "id": f"{catalogue}-{seed}",
            "catalogue": catalogue,
            "image_b64": b64(image(seed)),
            "metadata": {"class": "heels" if seed % 2 else "flats"},
            "models": ["infogan", "mobilenet_v2"],
        }
        reply = await gw.client.post("/v1/items", json=item, headers=KEY)
        assert reply.status_code == 201, reply.text


async def test_ingest_cli_then_search_by_upload_and_by_id(
    embedder_url, vector_search, tmp_path, redis_prefix, live_gateway
) -> None:
    ids = write_catalog(tmp_path, 12, category="cli")
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "ingest", "--catalog", str(tmp_path),
         "--models", "infogan,mobilenet_v2", "--embedder-url", embedder_url,
         "--vector-search", vector_search, "--batch-size", "5"],  # fmt: skip
        capture_output=True, text=True, timeout=120, env=ingest_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "skipping images/broken.png" in run.stderr and "indexed 24 vectors" in run.stderr
    gw = await live_gateway(
        catalogues="cli", catalog_dir=tmp_path, redis_url=REDIS, cache_prefix=redis_prefix
    )
    first = await gw.client.post("/v1/search", **upload(image(3), k="5"))
    assert first.status_code == 200, first.text
    doc = first.json()
    assert doc["items"][0]["id"] == ids[3] and doc["items"][0]["score"] > 0.999
    assert doc["items"][0]["metadata"] == {
        "category": "cli",
        "class": "heels",
        "colour": "Black",
        "title": "Shoe 3",
        "image": "images/heels/1003.png",
        "in_stock": "true",
    }
    assert (doc["model"], doc["model_version"], doc["index"]) == ("infogan", "1", "cli/infogan")
    assert doc["cached"] is False
    second = await gw.client.post("/v1/search", **upload(image(3), k="5"))
    assert second.json()["cached"] is True
    assert second.json()["items"] == doc["items"]
    picture = await gw.client.get(doc["items"][0]["image_url"].removeprefix("http://gw"))
    assert picture.status_code == 200 and picture.content == image(3)
    similar = await gw.client.get(f"/v1/items/{ids[3]}/similar", params={"k": 4})
    assert similar.status_code == 200, similar.text
    got = [i["id"] for i in similar.json()["items"]]
    assert len(got) == 4 and ids[3] not in got
    other = await gw.client.get(
        f"/v1/items/{ids[3]}/similar", params={"k": 4, "model": "mobilenet_v2"}
    )
    assert other.json()["index"] == "cli/mobilenet_v2"
    page = await gw.client.get("/v1/items", params={"catalogue": "cli", "limit": 5})
    assert page.json()["total"] == 12 and len(page.json()["items"]) == 5


async def test_ingest_find_reindex_delete(redis_prefix, live_gateway) -> None:
    gw = await live_gateway(catalogues="rest", redis_url=REDIS, cache_prefix=redis_prefix)
    await ingest_rest(gw, "rest", range(6))
    found = (await gw.client.post("/v1/search", **upload(image(4), k="3"))).json()
    assert found["items"][0]["id"] == "rest-4" and not found["cached"]
    again = (await gw.client.post("/v1/search", **upload(image(4), k="3"))).json()
    assert again["cached"] and again["index_generation"] == found["index_generation"]
    await ingest_rest(gw, "rest", range(6, 7))  # a write bumps the generation: new cache key
    after = (await gw.client.post("/v1/search", **upload(image(4), k="3"))).json()
    assert not after["cached"] and after["index_generation"] > found["index_generation"]
    gone = await gw.client.delete("/v1/items/rest-4", headers=KEY)
    assert gone.status_code == 200
    assert sorted(gone.json()["deleted_from"]) == ["rest/infogan", "rest/mobilenet_v2"]
    assert (await gw.client.get("/v1/items/rest-4/similar")).status_code == 404
    final = (await gw.client.post("/v1/search", **upload(image(4), k="3"))).json()
    assert "rest-4" not in [i["id"] for i in final["items"]] and not final["cached"]
    assert (await gw.client.delete("/v1/items/rest-4", headers=KEY)).status_code == 404


async def test_embedder_down(live_gateway) -> None:
    healthy = await live_gateway(catalogues="edown")
    await ingest_rest(healthy, "edown", range(5))
    gw = await live_gateway(catalogues="edown", embedder_url=f"http://127.0.0.1:{free_port()}")
    reply = await gw.client.post("/v1/search", **upload(image(1)))
    assert reply.status_code == 503
    error = reply.json()["error"]
    assert error["code"] == "dependency_unavailable" and error["dependency"] == "embedder"
    similar = await gw.client.get("/v1/items/edown-1/similar", params={"k": 2})
    assert similar.status_code == 200 and len(similar.json()["items"]) == 2
    assert similar.json()["model_version"] is None
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["vector-search"] == "ok"


async def test_redis_down_keeps_every_endpoint_working(live_gateway) -> None:
    gw = await live_gateway(catalogues="rdown", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    await ingest_rest(gw, "rdown", range(5))
    for _ in range(2):
        reply = await gw.client.post("/v1/search", **upload(image(2), k="2"))
        assert reply.status_code == 200 and reply.json()["cached"] is False
    assert (await gw.client.get("/v1/items/rdown-2/similar")).status_code == 200
    for path in ("/v1/models", "/v1/catalogues", "/healthz", "/v1/items?catalogue=rdown"):
        assert (await gw.client.get(path)).status_code == 200, path
    compare = await gw.client.get(
        "/v1/compare", params={"item_id": "rdown-2", "models": "infogan,mobilenet_v2", "k": 2}
    )
    assert compare.status_code == 200
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["cache"].startswith("degraded")
    metrics = (await gw.client.get("/metrics")).text
    assert 'gateway_cache_requests_total{result="error"}' in metrics


async def test_vector_search_down(embedder_url, make_gateway) -> None:
    gw = await make_gateway(
        gw_settings(embedder_url=embedder_url, vector_search_address=f"127.0.0.1:{free_port()}")
    )
    reply = await gw.client.post("/v1/search", **upload(image(1), catalogue="shoes"))
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "dependency_unavailable"
    assert (await gw.client.get("/v1/items/x/similar?catalogue=shoes")).status_code == 503


async def test_compare_token_and_grpc(live_gateway) -> None:
    gw = await live_gateway(catalogues="cmp")
    await ingest_rest(gw, "cmp", range(8))
    doc = (
        await gw.client.get(
            "/v1/compare", params={"item_id": "cmp-0", "models": "infogan,mobilenet_v2"}
        )
    ).json()
    shown = compare_token.decode("test-secret", doc["token"], max_age_s=60)
    assert {r.model for r in shown.rows} == {"infogan", "mobilenet_v2"}
    assert [list(r.items) for r in shown.rows] == [
        [i["id"] for i in r["items"]] for r in doc["rows"]
    ]
    assert all(len(r["items"]) == 5 for r in doc["rows"])

    server, port = await start_grpc(gw.services, "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = rpb_grpc.RecommendStub(channel)
            by_image = await stub.SearchByImage(rpb.SearchByImageRequest(image=image(6), k=3))
            assert by_image.items[0].id == "cmp-6"
            assert by_image.provenance.index == "cmp/infogan"
            assert by_image.provenance.model_version == "1"
            similar = await stub.SimilarToItem(rpb.SimilarToItemRequest(item_id="cmp-6", k=2))
            assert len(similar.items) == 2 and "cmp-6" not in [i.id for i in similar.items]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.SimilarToItem(rpb.SimilarToItemRequest(item_id="missing", k=2))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)
