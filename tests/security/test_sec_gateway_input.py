"""Hostile input to the gateway (issue 14, points 3, 5, 6, 7 and the 413 of point 8): one
row per reproduction, each run against an in-process gateway wired to the unit-test fakes.
Every row failed against the gateway before the fix."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import redis
from PIL import Image

from fashionrec_testing.repo import REPO, load_file
from gateway.config import GatewaySettings
from gateway.transport.rest.app import create_app
from gateway.wiring import Services, build_rate_limiter

REDIS_URL = "redis://127.0.0.1:6379/13"
KEY = "configured-key-zz9"


# The fakes of services/gateway/tests/unit/conftest.py (one definition of them).
fakes = load_file(
    REPO / "services" / "gateway" / "tests" / "unit" / "conftest.py",
    "fashionrec_gateway_unit_fakes",
)


class RecordingEmbedder(fakes.FakeEmbedder):  # type: ignore[name-defined,misc]
    """Keeps the image bytes the gateway would send to the served model."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[bytes] = []

    async def embed(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        self.images.extend(images)
        return await super().embed(model, images)


@dataclass
class Gateway:
    client: httpx.AsyncClient
    services: Services
    embedder: RecordingEmbedder


@asynccontextmanager
async def gateway(tmp_path: Path, redis_limits: bool = False, **overrides: Any) -> AsyncIterator:
    fields: dict[str, Any] = {
        "api_keys": f"{KEY},other-key",
        "vote_token_secret": "s3cret",
        "catalog_dir": tmp_path,
        "max_upload_bytes": 200_000,
        "max_pixels": 1_000_000,
        "rate_limit_per_minute": 0,
    }
    settings = GatewaySettings(**(fields | overrides))
    embedder, store = RecordingEmbedder(), fakes.FakeStore()
    fakes.seed_store(store)
    services = fakes.make_services(settings, embedder, store, fakes.Votes())
    if redis_limits:
        services.limiter = build_rate_limiter(settings, services.metrics)
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                yield Gateway(client, services, embedder)
    finally:
        await services.limiter.close()


def upload(data: bytes, **fields: str) -> dict:
    return {"files": {"image": ("q", data, "application/octet-stream")}, "data": fields}


def animation(fmt: str, frames: int) -> bytes:
    """Tiny frames (8x8), each a different colour so the encoder keeps them all."""
    colours = [(i * 2 % 256, 255 - i * 2 % 256, i % 7 * 30) for i in range(frames)]
    images = [Image.new("RGB", (8, 8), colour) for colour in colours]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=40, loop=0)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header that declares ``width`` x ``height`` over a few bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def frames_in(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as img:
        return int(getattr(img, "n_frames", 1))


def assert_error(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json()["error"]["code"] == code


# ---- the image server for image_url rows: a normal one and a 1 byte/s one -----------------


@dataclass
class ImageServer:
    port: int
    requests: list[str] = field(default_factory=list)


@asynccontextmanager
async def image_server(body: bytes, bytes_per_s: float | None = None) -> AsyncIterator:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if bytes_per_s is None:
                    self.wfile.write(body)
                    return
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(1 / bytes_per_s)
            except OSError:
                return  # the gateway gave up and closed the connection

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ImageServer(server.server_address[1], seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---- the rows ------------------------------------------------------------------------------


async def animated_gif_reaches_the_model_as_one_frame(tmp_path: Path) -> None:
    await _one_frame(tmp_path, animation("GIF", 100))


async def animated_png_reaches_the_model_as_one_frame(tmp_path: Path) -> None:
    await _one_frame(tmp_path, animation("PNG", 10))


async def _one_frame(tmp_path: Path, data: bytes) -> None:
    assert frames_in(data) > 1
    async with gateway(tmp_path) as gw:
        reply = await gw.client.post("/v1/search", **upload(data, catalogue="shoes", k="3"))
        assert reply.status_code == 200, reply.text
        assert [frames_in(sent) for sent in gw.embedder.images] == [1]


async def decompression_bomb_is_413(tmp_path: Path) -> None:
    bomb = png_declaring(30_000, 30_000)  # 900 Mpx declared over a 100-byte file
    assert len(bomb) < 200
    async with gateway(tmp_path) as gw:
        reply = await gw.client.post("/v1/search", **upload(bomb, catalogue="shoes"))
        assert_error(reply, 413, "payload_too_large")
        assert gw.embedder.images == []


async def made_up_keys_share_the_anonymous_bucket(tmp_path: Path) -> None:
    async with gateway(tmp_path, rate_limit_per_minute=3) as gw:
        codes = []
        for n in range(5):
            headers = {"X-API-Key": f"made-up-{n}"}
            codes.append((await gw.client.get("/v1/catalogues", headers=headers)).status_code)
        assert codes == [200, 200, 200, 429, 429]
        no_key = await gw.client.get("/v1/catalogues")
        assert_error(no_key, 429, "rate_limited")
        # A configured key is its own principal: the anonymous flood does not starve it.
        assert (await gw.client.get("/v1/catalogues", headers={"X-API-Key": KEY})).is_success


async def two_replicas_share_one_redis_bucket(tmp_path: Path) -> None:
    prefix = f"fashionrec:test:sec:{uuid.uuid4().hex}:"
    store = redis.Redis.from_url(REDIS_URL)
    try:
        store.ping()
    except redis.RedisError as exc:
        pytest.skip(f"needs Redis at {REDIS_URL} (make system-deps): {exc}")
    shared = {"rate_limit_per_minute": 3, "rate_limit_redis_url": REDIS_URL}
    try:
        async with (
            gateway(tmp_path, redis_limits=True, cache_prefix=prefix, **shared) as one,
            gateway(tmp_path, redis_limits=True, cache_prefix=prefix, **shared) as two,
        ):
            codes = []
            for replica in (one, two, one, two, one):
                reply = await replica.client.get("/v1/catalogues", headers={"X-API-Key": KEY})
                codes.append(reply.status_code)
            assert codes == [200, 200, 200, 429, 429]
            assert one.services.metrics.rate_limit_fallbacks._value.get() == 0
        keys = [k.decode() for k in store.scan_iter(match=prefix + "*")]
        assert keys and not any(KEY in k for k in keys)  # buckets are named by key id
    finally:
        for k in store.scan_iter(match=prefix + "*"):
            store.delete(k)
        store.close()


async def grpc_made_up_keys_are_rate_limited(tmp_path: Path) -> None:
    from fashionrec.recommend.v1 import recommend_pb2 as pb
    from fashionrec.recommend.v1 import recommend_pb2_grpc as pb_grpc
    from gateway.transport.grpc_api import start_grpc

    async with gateway(tmp_path, rate_limit_per_minute=3) as gw:
        server, port = await start_grpc(gw.services, "127.0.0.1", 0)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.RecommendStub(channel)
                request = pb.SimilarToItemRequest(item_id="1", catalogue="shoes", k=2)
                codes = []
                for n in range(5):
                    try:
                        await stub.SimilarToItem(request, metadata=[("x-api-key", f"made-up-{n}")])
                        codes.append(grpc.StatusCode.OK)
                    except grpc.aio.AioRpcError as exc:
                        codes.append(exc.code())
                ok, exhausted = grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED
                assert codes == [ok, ok, ok, exhausted, exhausted]
                await stub.SimilarToItem(request, metadata=[("x-api-key", KEY)])
        finally:
            await server.stop(None)


def nested(depth: int) -> str:
    return '{"a":' * depth + '"x"' + "}" * depth


async def deep_filters_on_search_are_400(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        for filters in (nested(3000), "[" * 1500 + "]" * 1500):
            form = upload(fakes.png(1), catalogue="shoes", filters=filters)
            assert_error(await gw.client.post("/v1/search", **form), 400, "invalid_input")


async def deep_filters_on_similar_are_400(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        for filters in (nested(3000), "[" * 1500 + "]" * 1500):
            reply = await gw.client.get("/v1/items/1/similar", params={"filters": filters})
            assert_error(reply, 400, "invalid_input")


async def image_url_to_another_port_of_an_allowed_host_is_refused(tmp_path: Path) -> None:
    async with image_server(fakes.png(2)) as origin:
        url = f"http://127.0.0.1:{origin.port}/q.png"
        async with gateway(tmp_path, fetch_allow_hosts="127.0.0.1") as gw:
            reply = await gw.client.post("/v1/search", json={"image_url": url})
            assert_error(reply, 400, "invalid_input")
            assert origin.requests == []
        # The same origin listed with its port is fetched: the refusal above is the port's.
        async with gateway(tmp_path, fetch_allow_hosts=f"127.0.0.1:{origin.port}") as gw:
            reply = await gw.client.post("/v1/search", json={"image_url": url})
            assert reply.status_code == 200, reply.text
            assert origin.requests == ["/q.png"]


async def image_url_slow_server_hits_the_deadline(tmp_path: Path) -> None:
    async with image_server(fakes.png(3)[:20], bytes_per_s=1) as origin:
        allow = f"127.0.0.1:{origin.port}"
        async with gateway(tmp_path, fetch_allow_hosts=allow, image_url_deadline_s=1.0) as gw:
            url = f"http://127.0.0.1:{origin.port}/slow.png"
            start = time.monotonic()
            reply = await gw.client.post("/v1/search", json={"image_url": url})
            elapsed = time.monotonic() - start
            assert_error(reply, 400, "invalid_input")
            assert "within" in reply.json()["error"]["message"]
            assert elapsed < 4.0, elapsed  # 20 bytes at 1 byte/s would take 20 s


class UnloadedEmbedder(RecordingEmbedder):
    """The embedder after someone unloaded every model: 404 for a model we indexed."""

    async def model_version(self, model: str) -> str:
        raise fakes.NotFound(f"embedder: Servable not found for request: Latest({model})")

    async def embed(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        raise fakes.NotFound(f"embedder: Servable not found for request: Latest({model})")


async def query_errors_use_the_one_shape(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        for params in ({"k": "abc"}, {"k": "0"}, {"k": "101"}, {"catalogue": "socks"}):
            reply = await gw.client.get("/v1/items/3/similar", params=params)
            assert_error(reply, 400, "invalid_input")
            assert "detail" not in reply.json(), reply.text
        assert_error(await gw.client.get("/v1/no-such-route"), 404, "not_found")
        assert_error(await gw.client.delete("/v1/search"), 405, "method_not_allowed")


async def an_unloaded_model_is_503_an_unknown_one_404(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        gw.services.recommender.embedder = UnloadedEmbedder()
        search = upload(fakes.png(1), catalogue="shoes")
        assert_error(await gw.client.post("/v1/search", **search), 503, "dependency_unavailable")
        other = upload(fakes.png(1), catalogue="shoes", model="no_such_model")
        assert_error(await gw.client.post("/v1/search", **other), 404, "not_found")


async def openapi_states_the_enforced_limits(tmp_path: Path) -> None:
    async with gateway(tmp_path, max_k=50, catalogues="shoes,bags") as gw:
        schema = (await gw.client.get("/openapi.json")).json()
    similar = schema["paths"]["/v1/items/{item_id}/similar"]["get"]
    params = {p["name"]: p.get("schema") for p in similar["parameters"]}
    assert params["k"]["maximum"] == 50
    assert params["model"]["anyOf"][0]["pattern"].startswith("^[A-Za-z0-9_.-]")
    filters = next(p for p in similar["parameters"] if p["name"] == "filters")
    assert filters["content"]["application/json"]["schema"]["type"] == "object"
    assert params["catalogue"]["anyOf"][0]["enum"][:2] == ["shoes", "bags"]
    multipart = schema["paths"]["/v1/search"]["post"]["requestBody"]["content"]
    assert multipart["multipart/form-data"]["schema"]["properties"]["k"]["maximum"] == 50
    compare = schema["paths"]["/v1/compare"]["get"]["parameters"]
    models = next(p for p in compare if p["name"] == "models")["schema"]
    assert (models["minItems"], models["maxItems"], models["uniqueItems"]) == (2, 8, True)
    for path, item in schema["paths"].items():
        for method, op in item.items():
            assert "422" not in op["responses"], (path, method)
            for status, response in op["responses"].items():
                if status[0] in "45" or status == "default":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (path, method, status)


Row = Callable[[Path], Awaitable[None]]
ROWS: list[tuple[str, Row]] = [
    ("3 animated GIF: one frame to the model", animated_gif_reaches_the_model_as_one_frame),
    ("3 animated PNG: one frame to the model", animated_png_reaches_the_model_as_one_frame),
    ("8 decompression bomb: 413", decompression_bomb_is_413),
    ("5 made-up keys: one anonymous bucket", made_up_keys_share_the_anonymous_bucket),
    ("5 two replicas: one Redis bucket", two_replicas_share_one_redis_bucket),
    ("5 gRPC made-up keys: RESOURCE_EXHAUSTED", grpc_made_up_keys_are_rate_limited),
    ("6 deep filters on search: 400", deep_filters_on_search_are_400),
    ("6 deep filters on similar: 400", deep_filters_on_similar_are_400),
    ("7 image_url other port: refused", image_url_to_another_port_of_an_allowed_host_is_refused),
    ("7 image_url 1 byte/s: deadline", image_url_slow_server_hits_the_deadline),
    ("8 query errors: one shape, 400 not 422", query_errors_use_the_one_shape),
    ("8 unloaded model: 503, unknown: 404", an_unloaded_model_is_503_an_unknown_one_404),
    ("8 OpenAPI: the enforced limits", openapi_states_the_enforced_limits),
]


@pytest.mark.parametrize("row", [r for _, r in ROWS], ids=[name for name, _ in ROWS])
async def test_hostile_gateway_input(row: Row, tmp_path: Path) -> None:
    await asyncio.wait_for(row(tmp_path), timeout=30)
