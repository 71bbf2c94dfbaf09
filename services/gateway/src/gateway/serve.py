"""One gateway process: REST (uvicorn) and, unless told otherwise, the gRPC server."""

from __future__ import annotations

import logging
import socket

import uvicorn

from fashionrec_common.heap import freeze_startup_objects
from gateway.config import GatewaySettings
from gateway.transport.grpc_api import start_grpc
from gateway.transport.rest.app import create_app
from gateway.wiring import build_services

log = logging.getLogger("gateway")


async def serve(
    settings: GatewaySettings, sock: socket.socket | None = None, grpc: bool = True
) -> None:
    """REST on ``sock`` when given (a worker's own SO_REUSEPORT socket on the port the parent
    reserved, gateway.workers), else on GATEWAY_HOST:GATEWAY_PORT; gRPC on GATEWAY_GRPC_PORT
    when ``grpc`` and the port is set."""
    services = build_services(settings)
    app = create_app(settings, services)
    grpc_server = None
    if grpc and settings.grpc_port:
        grpc_server, port = await start_grpc(services, settings.host, settings.grpc_port)
        log.info("gRPC fashionrec.recommend.v1 on %s:%d", settings.host, port)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False
    )
    frozen = freeze_startup_objects()  # a full GC walked them in 44 ms (fashionrec_common.heap)
    log.debug("froze %d start-up objects", frozen)
    try:
        await uvicorn.Server(config).serve(sockets=[sock] if sock is not None else None)
    finally:
        if grpc_server is not None:
            await grpc_server.stop(5)
        await services.close()
