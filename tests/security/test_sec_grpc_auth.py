"""Internal gRPC is closed to callers without the token (issue 14, point 4).

Real servers on port 0: vector-search (whose DropIndex, Upsert and Delete anyone could
call) and the gateway's gRPC API, each with a token. Every (service, RPC) is called
without metadata, with a wrong token and with the right one; health stays open (kubelet's
gRPC probes send no metadata). The gateway's own vector-search client must send its
token, and the optional (m)TLS must refuse a client without a certificate.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from prometheus_client import CollectorRegistry

from fashionrec.recommend.v1 import recommend_pb2 as rpb
from fashionrec.recommend.v1 import recommend_pb2_grpc as rpb_grpc
from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import (
    ClientTls,
    ServerTls,
    TokenAuth,
    aio_channel,
    bearer_metadata,
    token_auth,
)
from gateway.adapters.resilience import CallPolicy
from gateway.adapters.vector_search import VectorSearchClient
from gateway.config import GatewaySettings
from gateway.errors import DependencyUnavailable
from gateway.transport.grpc_api import start_grpc
from gateway.wiring import Services, build_services
from vector_search.config import VectorSearchSettings
from vector_search.transport.server import VectorSearchServer, build_server

pytestmark = pytest.mark.integration

VS_TOKEN = "vs-token-current"
VS_NEXT = "vs-token-next"  # a second accepted token: rotation without downtime
GW_TOKEN = "gw-grpc-token"
DIM = 4
INDEX = "shoes/infogan"
ITEMS = [pb.Item(id=f"p{i}", vector=[1.0, i / 10, 0.0, 0.0]) for i in range(4)]

NONE: tuple[tuple[str, str], ...] = ()
WRONG = bearer_metadata("not-the-token")
OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.UNAUTHENTICATED


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return OK


async def _vector_search(data_dir: Path, **settings: Any) -> VectorSearchServer:
    app = build_server(
        VectorSearchSettings(data_dir=data_dir, port=0, **settings), CollectorRegistry()
    )
    await app.start()
    return app


@pytest.fixture
async def vs(tmp_path: Path) -> AsyncIterator[str]:
    """A vector-search accepting two tokens, with index shoes/infogan holding 4 items."""
    app = await _vector_search(tmp_path, auth_tokens=f"{VS_TOKEN}, {VS_NEXT}")
    address = f"127.0.0.1:{app.port}"
    auth = bearer_metadata(VS_TOKEN)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.VectorSearchStub(channel)
        spec = pb.IndexSpec(name=INDEX, dimension=DIM, metric=pb.METRIC_L2, kind="Flat")
        await stub.CreateIndex(pb.CreateIndexRequest(spec=spec), metadata=auth)
        await stub.Upsert(pb.UpsertRequest(index=INDEX, items=ITEMS), metadata=auth)
    yield address
    await app.close(0)


VsCall = Callable[[pb_grpc.VectorSearchStub, Any], Awaitable[Any]]
VS_RPCS: dict[str, VsCall] = {
    "DropIndex": lambda s, md: s.DropIndex(pb.DropIndexRequest(index=INDEX), metadata=md),
    "Upsert": lambda s, md: s.Upsert(pb.UpsertRequest(index=INDEX, items=ITEMS[:1]), metadata=md),
    "Delete": lambda s, md: s.Delete(pb.DeleteRequest(index=INDEX, ids=["p1"]), metadata=md),
    "CreateIndex": lambda s, md: s.CreateIndex(
        pb.CreateIndexRequest(
            spec=pb.IndexSpec(name="x/y", dimension=DIM, metric=pb.METRIC_L2, kind="Flat")
        ),
        metadata=md,
    ),
    "Search": lambda s, md: s.Search(
        pb.SearchRequest(index=INDEX, query=pb.Query(vector=pb.Vector(values=[1, 0, 0, 0])), k=2),
        metadata=md,
    ),
    "ListItems": lambda s, md: s.ListItems(pb.ListItemsRequest(index=INDEX), metadata=md),
    "BatchSearch": lambda s, md: s.BatchSearch(pb.BatchSearchRequest(), metadata=md),
}
CALLERS = {
    "no metadata": (NONE, DENIED),
    "wrong token": (WRONG, DENIED),
    "other scheme": ((("authorization", f"Basic {VS_TOKEN}"),), DENIED),
    "right token": (bearer_metadata(VS_TOKEN), OK),
    "second token": (bearer_metadata(VS_NEXT), OK),
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("rpc", list(VS_RPCS))
async def test_sec_vector_search_rpc_needs_the_token(vs: str, rpc: str, caller: str) -> None:
    metadata, want = CALLERS[caller]
    async with grpc.aio.insecure_channel(vs) as channel:
        stub = pb_grpc.VectorSearchStub(channel)
        assert await _code(VS_RPCS[rpc](stub, metadata)) == want
        if want == DENIED:  # a refused write changed nothing: still 4 items in the index
            request = pb.ListItemsRequest(index=INDEX, limit=10)
            listed = await stub.ListItems(request, metadata=bearer_metadata(VS_TOKEN))
            assert listed.total == len(ITEMS)


async def _health(address: str, credentials: grpc.ChannelCredentials | None = None) -> int:
    channel = (
        grpc.aio.secure_channel(address, credentials)
        if credentials
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    return int(reply.status)


async def test_sec_vector_search_health_is_open_to_probes(vs: str) -> None:
    assert await _health(vs) == health_pb2.HealthCheckResponse.SERVING


# The gateway: its gRPC API behind GW_TOKEN, its vector-search client sending a token.


@dataclass
class Gateway:
    address: str
    services: Services


@pytest.fixture
async def make_gateway(vs: str) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    made: list[tuple[grpc.aio.Server, Services]] = []

    async def make(vector_search_token: str | None = VS_TOKEN) -> Gateway:
        settings = GatewaySettings(
            api_keys="k",
            vote_token_secret="s",
            embedder_url="http://127.0.0.1:9",  # nothing listens there
            vector_search_address=vs,
            vector_search_token=vector_search_token,
            grpc_auth_tokens=GW_TOKEN,
            catalogues="shoes",
            retries=0,
            embed_timeout_s=2.0,
            metadata_ttl_s=0,
        )
        services = build_services(settings)
        server, port = await start_grpc(services, "127.0.0.1", 0)
        made.append((server, services))
        return Gateway(f"127.0.0.1:{port}", services)

    yield make
    for server, services in made:
        await server.stop(0)
        await services.close()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


GwCall = Callable[[rpb_grpc.RecommendStub, Any], Awaitable[Any]]
GW_RPCS: dict[str, tuple[GwCall, grpc.StatusCode]] = {
    # (call, its code with the right token: the embedder is down, so UNAVAILABLE for an
    # image search proves the call got past authentication)
    "SimilarToItem": (
        lambda s, md: s.SimilarToItem(
            rpb.SimilarToItemRequest(item_id="p1", catalogue="shoes", k=2), metadata=md
        ),
        OK,
    ),
    "SearchByImage": (
        lambda s, md: s.SearchByImage(rpb.SearchByImageRequest(image=_png()), metadata=md),
        grpc.StatusCode.UNAVAILABLE,
    ),
}
GW_CALLERS = {"no metadata": NONE, "wrong token": WRONG, "right token": bearer_metadata(GW_TOKEN)}


@pytest.mark.parametrize("caller", list(GW_CALLERS))
@pytest.mark.parametrize("rpc", list(GW_RPCS))
async def test_sec_gateway_grpc_needs_the_token(make_gateway, rpc: str, caller: str) -> None:
    gw = await make_gateway()
    call, with_token = GW_RPCS[rpc]
    want = with_token if caller == "right token" else DENIED
    async with grpc.aio.insecure_channel(gw.address) as channel:
        assert await _code(call(rpb_grpc.RecommendStub(channel), GW_CALLERS[caller])) == want
    assert await _health(gw.address) == health_pb2.HealthCheckResponse.SERVING


async def test_sec_gateway_sends_its_vector_search_token(make_gateway) -> None:
    """Same gateway, same vector-search: only the token the client sends differs."""
    request = rpb.SimilarToItemRequest(item_id="p1", catalogue="shoes", k=2)
    auth = bearer_metadata(GW_TOKEN)
    right = await make_gateway(VS_TOKEN)
    async with grpc.aio.insecure_channel(right.address) as channel:
        reply = await rpb_grpc.RecommendStub(channel).SimilarToItem(request, metadata=auth)
    assert {i.id for i in reply.items} == {"p0", "p2"}  # the two nearest, p1 excluded
    for token in (None, "stale-token"):
        wrong = await make_gateway(token)
        with pytest.raises(DependencyUnavailable, match="UNAUTHENTICATED"):
            await wrong.services.store.list_indexes()
        async with grpc.aio.insecure_channel(wrong.address) as channel:
            code = await _code(
                rpb_grpc.RecommendStub(channel).SimilarToItem(request, metadata=auth)
            )
        assert code == grpc.StatusCode.UNAVAILABLE


# Building blocks: the token check itself, settings, the open-mode warning.


def test_sec_token_check_is_exact() -> None:
    auth = TokenAuth(["alpha", "beta"])
    assert auth.allowed([("authorization", "Bearer alpha")])
    assert auth.allowed([("x-other", "1"), ("authorization", "bearer beta")])
    for bad in ("Bearer alph", "Bearer alphaa", "Bearer ", "alpha", "Bearer gamma", ""):
        assert not auth.allowed([("authorization", bad)]), bad
    assert not auth.allowed([]) and not auth.allowed(None)
    with pytest.raises(ValueError):
        TokenAuth(["", ""])


def test_sec_settings_read_tokens_and_tls_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VECTOR_SEARCH_AUTH_TOKENS", "new-token, old-token")
    monkeypatch.setenv("VECTOR_SEARCH_TLS__CERT_FILE", str(tmp_path / "c.pem"))
    monkeypatch.setenv("VECTOR_SEARCH_TLS__KEY_FILE", str(tmp_path / "k.pem"))
    vs = VectorSearchSettings()
    assert [t.get_secret_value() for t in vs.auth_tokens] == ["new-token", "old-token"]
    assert vs.tls is not None and vs.tls.client_ca_file is None
    assert "new-token" not in repr(vs)
    monkeypatch.setenv("GATEWAY_VECTOR_SEARCH_TOKEN", "new-token")
    monkeypatch.setenv("GATEWAY_GRPC_AUTH_TOKENS", "a,b")
    monkeypatch.setenv("GATEWAY_VECTOR_SEARCH_TLS__CA_FILE", str(tmp_path / "ca.pem"))
    gw = GatewaySettings(api_keys="k", vote_token_secret="s")
    assert gw.vector_search_token is not None
    assert gw.vector_search_token.get_secret_value() == "new-token"
    assert len(gw.grpc_auth_tokens) == 2
    assert gw.vector_search_tls == ClientTls(ca_file=tmp_path / "ca.pem")


def test_sec_open_mode_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert token_auth([], "vector-search") == []
    assert "no gRPC auth token" in caplog.text
    caplog.clear()
    assert len(token_auth(["t"], "vector-search")) == 1
    assert "no gRPC auth token" not in caplog.text


# Optional mTLS, with the throwaway CA of conftest.py's ``pki``.


async def test_sec_mutual_tls_refuses_clients_without_a_trusted_certificate(
    pki: Path, tmp_path: Path
) -> None:
    tls = ServerTls(
        cert_file=pki / "server.pem", key_file=pki / "server.key", client_ca_file=pki / "ca.pem"
    )
    app = await _vector_search(tmp_path, auth_tokens=VS_TOKEN, tls=tls)
    address = f"127.0.0.1:{app.port}"
    try:
        client = ClientTls(
            ca_file=pki / "ca.pem", cert_file=pki / "client.pem", key_file=pki / "client.key"
        )
        store = VectorSearchClient(
            address, policy=CallPolicy(retries=0), token=VS_TOKEN, tls=client
        )
        try:
            assert await store.list_indexes() == []
        finally:
            await store.close()
        refused = {
            "plaintext": None,
            "no client certificate": ClientTls(ca_file=pki / "ca.pem"),
            "certificate of another CA": ClientTls(
                ca_file=pki / "ca.pem",
                cert_file=pki / "stranger.pem",
                key_file=pki / "stranger.key",
            ),
        }
        auth = bearer_metadata(VS_TOKEN)
        for why, client_tls in refused.items():
            async with aio_channel(address, client_tls) as channel:
                call = pb_grpc.VectorSearchStub(channel).ListIndexes(
                    pb.ListIndexesRequest(), metadata=auth, timeout=5
                )
                assert await _code(call) == grpc.StatusCode.UNAVAILABLE, why
        # TLS does not replace the token: a trusted certificate without it is refused.
        async with aio_channel(address, client) as channel:
            call = pb_grpc.VectorSearchStub(channel).ListIndexes(pb.ListIndexesRequest())
            assert await _code(call) == DENIED
    finally:
        await app.close(0)
