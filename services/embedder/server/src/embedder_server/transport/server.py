"""Process wiring: one asyncio loop serving gRPC and REST over one DataPlane."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import grpc
import uvicorn
from grpc_health.v1 import health_pb2

from embedder_server.adapters.servable import set_threads
from embedder_server.config import ServerOptions, SslConfig
from embedder_server.domain.dataplane import DataPlane, Limits
from embedder_server.domain.manager import ModelManager
from embedder_server.domain.model_config import load_config_file, single_model
from embedder_server.transport.grpc_api import MODEL_SERVICE, PREDICTION_SERVICE, add_servicers
from embedder_server.transport.rest_api import create_app
from fashionrec_common.grpc_server import build_server, serve_until_signal
from fashionrec_common.heap import freeze_startup_objects

log = logging.getLogger(__name__)

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _QuietUvicorn(uvicorn.Server):
    """Leave signal handling to ``serve_until_signal`` so gRPC and REST stop together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_plane(opts: ServerOptions) -> DataPlane:
    if opts.model_config_file:
        configs = load_config_file(opts.model_config_file)
    else:
        assert opts.model_base_path is not None
        configs = single_model(opts.model_name, opts.model_base_path)
    limits = Limits(opts.max_request_bytes, opts.max_image_pixels, opts.max_inflight)
    return DataPlane(
        ModelManager(configs),
        batching=opts.batching,
        limits=limits,
        allow_model_management=opts.allow_model_management,
    )


async def _report_health(health: object, manager: ModelManager, every_s: float = 1.0) -> None:
    """SERVING while every configured model has an available version, else NOT_SERVING."""
    names = ("", PREDICTION_SERVICE, MODEL_SERVICE)
    while True:
        ready = manager.ready()
        status = health_pb2.HealthCheckResponse.SERVING if ready else NOT_SERVING
        for name in names:
            await health.set(name, status)  # type: ignore[attr-defined]
        await asyncio.sleep(every_s)


def _bind(server: grpc.aio.Server, address: str, ssl: SslConfig | None) -> int:
    """Listen on ``address``: TLS only when an SSLConfig is given (mTLS with client_verify)."""
    if ssl is None:
        return server.add_insecure_port(address)
    credentials = grpc.ssl_server_credentials(
        [(ssl.server_key.encode(), ssl.server_cert.encode())],
        root_certificates=ssl.custom_ca.encode() or None,
        require_client_auth=ssl.client_verify,
    )
    return server.add_secure_port(address, credentials)


async def serve(opts: ServerOptions) -> None:
    """Load models, start both servers, poll the repository, stop on SIGTERM/SIGINT."""
    set_threads(opts.intra_op_threads, opts.inter_op_threads)
    plane = build_plane(opts)
    await plane.manager.sync()
    server, health = build_server([PREDICTION_SERVICE, MODEL_SERVICE])
    add_servicers(server, plane)
    grpc_port = _bind(server, f"{opts.host}:{opts.port}", opts.ssl)
    await server.start()
    health_task = asyncio.create_task(_report_health(health, plane.manager))
    app = create_app(plane, metrics_path=opts.metrics_path, timeout_s=opts.rest_api_timeout_s)
    config = uvicorn.Config(
        app, host=opts.host, port=opts.rest_api_port, log_config=None, access_log=False
    )
    rest = _QuietUvicorn(config)
    rest_task = asyncio.create_task(rest.serve())
    poll_task = asyncio.create_task(plane.manager.poll_forever(opts.file_system_poll_wait_seconds))
    freeze_startup_objects()  # TensorFlow's objects: a full GC walked them in 154 ms
    log.info(
        "serving",
        extra={
            "grpc_port": grpc_port,
            "grpc_tls": "off" if not opts.ssl else "mtls" if opts.ssl.client_verify else "tls",
            "rest_port": opts.rest_api_port,
            "models": plane.manager.model_names(),
        },
    )
    try:
        await serve_until_signal(server)
    finally:
        poll_task.cancel()
        health_task.cancel()
        rest.should_exit = True
        await rest_task
