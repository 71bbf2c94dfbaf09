"""A real gRPC health service on a loopback port, for tests of readiness checks and probes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import grpc
from grpc_health.v1 import health, health_pb2_grpc


@contextmanager
def grpc_health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    """(port, servicer): set statuses on the servicer; stopped on exit."""
    server = grpc.server(ThreadPoolExecutor(2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None)
