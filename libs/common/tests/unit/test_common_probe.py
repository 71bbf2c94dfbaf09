"""The images' health check program, run as the HEALTHCHECK runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from grpc_health.v1 import health, health_pb2

from fashionrec_testing.health import grpc_health_server


def probe(target: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fashionrec_common.probe", target],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def grpc_health() -> Iterator[tuple[int, health.HealthServicer]]:
    with grpc_health_server() as served:
        yield served


def test_probe_http_is_healthy_only_on_2xx(http_port: int) -> None:
    assert probe(f"http://127.0.0.1:{http_port}/healthz").returncode == 0
    down = probe(f"http://127.0.0.1:{http_port}/readyz")
    assert down.returncode == 1 and "503" in down.stderr


def test_probe_grpc_follows_the_health_service(grpc_health) -> None:
    port, servicer = grpc_health
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe(f"grpc://127.0.0.1:{port}").returncode == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    down = probe(f"grpc://127.0.0.1:{port}")
    assert down.returncode == 1 and "NOT_SERVING" in down.stderr


def test_probe_refused_port_unknown_scheme_and_batch_jobs(http_port: int) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as closed:
        port = closed.server_address[1]
    assert probe(f"http://127.0.0.1:{port}/healthz").returncode == 1
    bad = probe("tcp://127.0.0.1:1")
    assert bad.returncode == 1 and "unknown health target" in bad.stderr
    assert probe("none").returncode == 0  # a batch job: healthy while it runs
