"""Hostile images and model management at the embedder (issue 14, point 3 and point 4).

The exported graph (what TF Serving runs in production) must refuse images above its pixel limit
from the header, before decoding, and decode only a GIF's first frame; our own server must do
the same checks before any model runs, so SavedModels exported before the guard are bounded too;
and HandleReloadConfigRequest, which can unload every model, is off unless enabled.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from embedder_server.config import ServerOptions, ServingSettings, options_from_args
from embedder_server.domain.dataplane import DataPlane
from embedder_server.domain.image_limits import check_image_pixels
from embedder_server.transport.grpc_api import add_servicers
from embedder_server.transport.rest_api import create_app
from embedder_server.transport.server import build_plane

MAX_PIXELS = 1_000_000
PALETTE = [255, 0, 0, 0, 0, 255] + [0] * 762  # index 0 red, 1 blue


# ---- hostile inputs ------------------------------------------------------------------------
def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height``; its pixel data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gif_frame(index: int, side: int) -> tuple[bytes, bytes]:
    """(header with the global palette, one image block) of a flat ``side`` square GIF."""
    image = Image.new("P", (side, side), index)
    image.putpalette(PALETTE)
    buf = io.BytesIO()
    image.save(buf, "GIF", optimize=False)
    data = buf.getvalue()
    start = data.index(b",", 13)
    return data[:start], data[start:-1]


def animated_gif(side: int, frames: int) -> bytes:
    """Frame 1 red, then ``frames - 1`` blue frames: small in bytes, ``frames`` x side^2 pixels."""
    header, red = _gif_frame(0, side)
    _, blue = _gif_frame(1, side)
    return header + red + blue * (frames - 1) + b";"


def still_gif(side: int, index: int = 0) -> bytes:
    header, frame = _gif_frame(index, side)
    return header + frame + b";"


def gif_frame_beyond_canvas() -> bytes:
    """A 10x10 canvas whose first frame's descriptor claims 4000x4000."""
    data = bytearray(still_gif(10))
    start = data.index(b",", 13)
    data[start + 5 : start + 9] = struct.pack("<HH", 4000, 4000)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (4, 4)), "BMP"))
    data[18:26] = struct.pack("<ii", width, -height)  # negative height: stored top-down
    return bytes(data)


def photo(width: int = 40, height: int = 30) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x * y) % 256], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8))


@dataclass(frozen=True)
class Case:
    id: str
    data: Callable[[], bytes]
    refused: str | None  # part of the INVALID_ARGUMENT message, or None when served


CASES = [
    Case("normal-png", lambda: encode(photo(), "PNG"), None),
    Case("normal-jpeg", lambda: encode(photo(), "JPEG"), None),
    Case("gif-100-frames", lambda: animated_gif(800, 100), None),
    Case(
        "png-declaring-30000x30000",
        lambda: png_declaring(30000, 30000),
        "900000000 pixels",  # above PIL's own bomb limit: our server reports PIL's wording
    ),
    Case(
        "jpeg-above-limit",
        lambda: encode(Image.new("RGB", (1200, 1000), "white"), "JPEG"),
        "1200x1000 = 1200000 pixels exceeds the limit",
    ),
    Case("bmp-above-limit", lambda: bmp_declaring(2000, 1000), "2000x1000 = 2000000 pixels"),
    Case("gif-frame-beyond-canvas", gif_frame_beyond_canvas, "of 4000x4000 = 16000000 pixels"),
]
GRAPH_ONLY = [
    Case("webp", lambda: encode(photo(), "WEBP"), "Unsupported image format"),
]


# ---- the exported graph (what TF Serving runs) ----------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, tf.Tensor]]:
    from embedder.models import build_gan, embedding_extractor
    from embedder.servable import SIGNATURE, export_model

    extractor = embedding_extractor(build_gan("dcgan", image_size=16))
    base = tmp_path_factory.mktemp("export")
    version = export_model(
        extractor, input_size=16, model_base=base, name="g", warmup=False, max_pixels=MAX_PIXELS
    )
    return tf.saved_model.load(str(version)).signatures[SIGNATURE]


@pytest.mark.parametrize("case", CASES + GRAPH_ONLY, ids=lambda c: c.id)
def test_exported_graph_refuses_before_decoding(served, case: Case) -> None:
    data = case.data()
    start = time.perf_counter()
    if case.refused is None:
        out = served(images=tf.constant([data]))["embedding"].numpy()
        assert out.shape[0] == 1 and np.isfinite(out).all()
        return
    with pytest.raises(tf.errors.InvalidArgumentError, match=case.refused):
        served(images=tf.constant([data]))
    assert time.perf_counter() - start < 5, "refused only after decoding"


def test_exported_graph_embeds_a_gifs_first_frame_only(served) -> None:
    images = [animated_gif(800, 100), still_gif(800, index=0), still_gif(800, index=1)]
    out = served(images=tf.constant(images))["embedding"].numpy()
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)  # the red first frame
    assert np.abs(out[0] - out[2]).max() > 1e-3  # not the blue frames that follow


def test_exported_graph_holds_one_gif_frame_in_memory(tmp_path: Path) -> None:
    """100 flat 4000x4000 frames (1.3 MB): TensorFlow's decoder alone held 1.6 GB of frames."""
    from fashionrec_testing.toy_model import export_toy_model

    version = export_toy_model(tmp_path, "toy", 1, warmup=False)  # default limit: 25 MP
    gif, small = tmp_path / "hostile.gif", tmp_path / "small.png"
    gif.write_bytes(animated_gif(4000, 100))
    small.write_bytes(encode(photo(), "PNG"))
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        def peak_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) // 1024
        serve = tf.saved_model.load({str(version)!r}).signatures["serving_default"]
        serve(images=tf.constant([open({str(small)!r}, "rb").read()]))  # first call: tracing
        before = peak_mb()
        serve(images=tf.constant([open({str(gif)!r}, "rb").read()]))
        print(peak_mb() - before)
        """
    )
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    growth_mb = int(done.stdout.split()[-1])
    assert growth_mb < 400, f"peak memory grew by {growth_mb} MB for one hostile GIF"


# ---- our server: checks before any model runs (old exports included) ------------------------
class _Legacy(tf.Module):
    """A servable as exported before the guard: decode_image straight on the request bytes."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        def one(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            return tf.reduce_mean(tf.image.resize(image, [4, 4]), axis=[0, 1])

        return {"embedding": tf.map_fn(one, images, fn_output_signature=tf.float32)}


@pytest.fixture(scope="module")
def legacy_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("legacy") / "legacy"
    module = _Legacy()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})
    return base


@dataclass
class Running:
    plane: DataPlane
    target: str


async def start(legacy_base: Path, allow: bool) -> tuple[grpc.aio.Server, Running]:
    opts = ServerOptions(
        model_base_path=str(legacy_base),
        model_name="legacy",
        max_image_pixels=MAX_PIXELS,
        allow_model_management=allow,
    )
    plane = build_plane(opts)
    await plane.manager.sync()
    server = grpc.aio.server()
    add_servicers(server, plane)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, Running(plane, f"127.0.0.1:{port}")


@pytest.fixture
async def running(legacy_base: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    server, info = await start(legacy_base, getattr(request, "param", False))
    yield info
    await server.stop(None)


def predict_request(data: bytes) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "legacy"
    req.inputs["images"].CopyFrom(tf.make_tensor_proto([data]))
    return req


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_server_checks_headers_before_the_model(running: Running, case: Case) -> None:
    async with grpc.aio.insecure_channel(running.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        call = stub.Predict(predict_request(case.data()), timeout=30)
        if case.refused is None:
            assert (await call).outputs["embedding"].tensor_shape.dim[0].size == 1
            return
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert case.refused in info.value.details()


async def test_server_rest_refusal_is_400_in_the_error_shape(running: Running) -> None:
    import base64

    app = create_app(running.plane, metrics_path=None)
    body = {"instances": [{"b64": base64.b64encode(png_declaring(30000, 30000)).decode()}]}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedder") as client:
        r = await client.post("/v1/models/legacy:predict", json=body)
    assert r.status_code == 400
    assert "900000000 pixels" in r.json()["error"]


def test_server_hands_the_model_one_gif_frame() -> None:
    hostile = animated_gif(800, 100)
    out = check_image_pixels(np.array([hostile, b"not an image"], dtype=object), MAX_PIXELS)
    with Image.open(io.BytesIO(out[0])) as image:
        assert image.n_frames == 1
        assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert out[1] == b"not an image"
    assert len(out[0]) < len(hostile) / 50


# ---- model management ------------------------------------------------------------------------
def empty_reload() -> model_management_pb2.ReloadConfigRequest:
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.SetInParent()
    return model_management_pb2.ReloadConfigRequest(config=config)


async def available_versions(channel: grpc.aio.Channel) -> list[int]:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "legacy"
    try:
        resp = await stub.GetModelStatus(req, timeout=10)
    except grpc.aio.AioRpcError:
        return []
    return [s.version for s in resp.model_version_status if s.state == 30]  # AVAILABLE


async def test_reload_with_empty_config_is_denied_by_default(running: Running) -> None:
    async with grpc.aio.insecure_channel(running.target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.HandleReloadConfigRequest(empty_reload(), timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "EMBEDDER_SERVING_ALLOW_MODEL_MANAGEMENT" in info.value.details()
        assert await available_versions(channel) == [1]


@pytest.mark.parametrize("running", [True], indirect=True)
async def test_reload_is_allowed_when_enabled(running: Running) -> None:
    async with grpc.aio.insecure_channel(running.target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        resp = await stub.HandleReloadConfigRequest(empty_reload(), timeout=30)
        assert resp.status.error_code == 0, resp.status.error_message
        assert await available_versions(channel) == []


@pytest.mark.parametrize(("env", "allowed"), [(None, False), ("true", True), ("false", False)])
def test_model_management_setting(monkeypatch: pytest.MonkeyPatch, env, allowed: bool) -> None:
    if env is None:
        monkeypatch.delenv("EMBEDDER_SERVING_ALLOW_MODEL_MANAGEMENT", raising=False)
    else:
        monkeypatch.setenv("EMBEDDER_SERVING_ALLOW_MODEL_MANAGEMENT", env)
    opts = options_from_args(["--model_base_path", "/models/x"], ServingSettings())
    assert opts.allow_model_management is allowed
