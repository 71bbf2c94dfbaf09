"""Health: the standard gRPC health service, and readiness checks for HTTP services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

Check = Callable[[], Awaitable[None]]


def add_grpc_health(server: grpc.aio.Server) -> health.aio.HealthServicer:
    """Register ``grpc.health.v1.Health``; callers flip services to SERVING when ready."""
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Readiness:
    """Named async checks; each raises when its dependency is not usable."""

    checks: dict[str, Check] = field(default_factory=dict)
    timeout_s: float = 2.0

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def run(self) -> tuple[bool, dict[str, str]]:
        """Run every check concurrently; returns (all ok, name -> "ok" or the error)."""

        async def one(check: Check) -> str:
            try:
                await asyncio.wait_for(check(), self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return "ok"

        names = list(self.checks)
        results = await asyncio.gather(*(one(self.checks[n]) for n in names))
        report = dict(zip(names, results, strict=True))
        return all(v == "ok" for v in results), report
