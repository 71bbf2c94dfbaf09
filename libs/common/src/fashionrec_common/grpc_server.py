"""gRPC server bootstrap: health, reflection, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from typing import Protocol

import grpc
from grpc_reflection.v1alpha import reflection

from fashionrec_common.health import add_grpc_health

log = logging.getLogger(__name__)

# 64 MiB: batch upserts of wide GAN vectors are large; the default 4 MiB is too small.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def build_server(
    service_names: Iterable[str],
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, object]:
    """Create an aio server with health and reflection for ``service_names``.

    Returns the server and its health servicer (set services SERVING when ready).
    """
    server = grpc.aio.server(
        interceptors=list(interceptors),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    health_servicer = add_grpc_health(server)
    names = [*service_names, "grpc.health.v1.Health", reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    return server, health_servicer


class Stoppable(Protocol):
    """A ``grpc.aio.Server``, or a service that stops more than one (vector-search's front)."""

    async def stop(self, grace: float | None) -> None: ...


async def serve_until_signal(server: Stoppable, grace_s: float = 5.0) -> None:
    """Run until SIGTERM/SIGINT, then stop accepting and let in-flight calls finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", extra={"grace_s": grace_s})
    await server.stop(grace_s)
