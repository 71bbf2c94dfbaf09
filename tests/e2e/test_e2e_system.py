"""The running system, end to end: health, search, more-like-this, compare, vote, leaderboard."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fashionrec.recommend.v1 import recommend_pb2, recommend_pb2_grpc
from fashionrec_common.grpc_auth import bearer_metadata

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
MODELS = "infogan,random_infogan"


def test_every_health_endpoint_answers(system, client):
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert httpx.get(f"{system.annotation}/healthz").status_code == 200
    assert httpx.get(f"{system.annotation}/readyz").status_code == 200
    status = httpx.get(f"{system.embedder}/v1/models/infogan").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    with grpc.insecure_channel(f"127.0.0.1:{system.vector_search_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_catalogues_and_models_are_listed(client):
    catalogues = client.get("/v1/catalogues").json()
    names = {c["name"] if isinstance(c, dict) else c for c in catalogues}
    assert {"shoes", "handbags"} <= names
    models = {m["name"] for m in client.get("/v1/models").json()}
    assert {"infogan", "random_infogan"} <= models


def test_search_by_upload_returns_k_items_of_the_catalogue(system, client):
    reply = client.post(
        "/v1/search",
        files={"image": ("heel.jpg", system.photo("heels"), "image/jpeg")},
        data={"catalogue": "shoes", "k": "5"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "infogan" and body["index"] == "shoes/infogan"
    assert body["model_version"] == "1"
    assert len(body["items"]) == 5
    assert {item["metadata"]["category"] for item in body["items"]} == {"shoes"}
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    image = client.get(body["items"][0]["image_url"])
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    again = client.post(
        "/v1/search",
        files={"image": ("heel.jpg", system.photo("heels"), "image/jpeg")},
        data={"catalogue": "shoes", "k": "5"},
    ).json()
    assert again["cached"] is True
    assert [i["id"] for i in again["items"]] == [i["id"] for i in body["items"]]


def test_a_corrupt_upload_is_a_clear_client_error(client):
    reply = client.post(
        "/v1/search",
        files={"image": ("bad.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")},
        data={"catalogue": "shoes"},
    )
    assert reply.status_code in (400, 415)
    assert set(reply.json()["error"]) >= {"code", "message"}


def test_more_like_this_excludes_the_item_itself(client):
    first = client.get("/v1/items", params={"catalogue": "handbags", "limit": 1}).json()
    item_id = first["items"][0]["id"]
    reply = client.get(f"/v1/items/{item_id}/similar", params={"k": 4})
    assert reply.status_code == 200, reply.text
    ids = [i["id"] for i in reply.json()["items"]]
    assert len(ids) == 4 and item_id not in ids


def test_internal_grpc_api_matches_rest(system, client):
    item_id = client.get("/v1/items", params={"catalogue": "shoes", "limit": 1}).json()["items"][0][
        "id"
    ]
    rest = client.get(f"/v1/items/{item_id}/similar", params={"k": 3}).json()
    with grpc.insecure_channel(f"127.0.0.1:{system.gateway_grpc_port}") as channel:
        stub = recommend_pb2_grpc.RecommendStub(channel)
        request = recommend_pb2.SimilarToItemRequest(item_id=item_id, catalogue="shoes", k=3)
        with pytest.raises(grpc.RpcError) as refused:
            stub.SimilarToItem(request, timeout=30)  # internal gRPC needs the token
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        token = bearer_metadata(system.local.gateway_grpc_token)
        reply = stub.SimilarToItem(request, timeout=30, metadata=token)
    assert [r.id for r in reply.items] == [i["id"] for i in rest["items"]]


def test_compare_vote_and_leaderboard(system, client):
    before = httpx.get(f"{system.annotation}/v1/leaderboard").json()
    item_id = client.get("/v1/items", params={"catalogue": "shoes", "limit": 1}).json()["items"][0][
        "id"
    ]
    compare = client.get(
        "/v1/compare",
        params={
            "item_id": item_id,
            "catalogue": "shoes",
            "models": "infogan,random_infogan",
            "k": 3,
        },
    )
    assert compare.status_code == 200, compare.text
    body = compare.json()
    assert len(body["rows"]) == 2
    assert "infogan" not in compare.text.replace("random_infogan", "")  # names are blinded
    headers = {"Authorization": f"Bearer {system.annotator_token}"}
    vote = {"token": body["token"], "choice": 1, "duration_ms": 1500}
    assert client.post("/v1/votes", json=vote, headers=headers).status_code == 201
    replay = client.post("/v1/votes", json=vote, headers=headers)
    assert replay.status_code == 409
    forged = client.post(
        "/v1/votes", json={**vote, "token": body["token"][:-4] + "AAAA"}, headers=headers
    )
    assert forged.status_code == 400
    anonymous = client.post("/v1/votes", json=vote)
    assert anonymous.status_code == 401
    after = httpx.get(f"{system.annotation}/v1/leaderboard").json()
    assert after["votes"] == before["votes"] + 1
    assert sum(m["wins"] for m in after["models"]) == sum(m["wins"] for m in before["models"]) + 1


def test_no_vote_is_lost_while_annotation_restarts(system, client):
    """The gateway answers 503 while annotation is down; the same vote, retried, lands once."""
    item = client.get("/v1/items", params={"catalogue": "handbags", "limit": 1}).json()["items"][0]
    compare = client.get(
        "/v1/compare",
        params={"item_id": item["id"], "catalogue": "handbags", "models": MODELS, "k": 3},
    ).json()
    headers = {"Authorization": f"Bearer {system.annotator_token}"}
    vote = {"token": compare["token"], "choice": 0, "duration_ms": 900}
    before = httpx.get(f"{system.annotation}/v1/leaderboard").json()["votes"]
    system.stop("annotation")
    try:
        down = client.post("/v1/votes", json=vote, headers=headers)
        assert down.status_code == 503
        assert "error" in down.json()
    finally:
        system.start("annotation")
    assert client.post("/v1/votes", json=vote, headers=headers).status_code == 201
    assert httpx.get(f"{system.annotation}/v1/leaderboard").json()["votes"] == before + 1
