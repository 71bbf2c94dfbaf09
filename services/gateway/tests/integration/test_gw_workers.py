"""``python -m gateway --workers 2``: two processes on one port, one set of metrics, a worker
that dies comes back, SIGTERM stops them all. No backends are needed for what is asserted:
an upload with the wrong content type is refused (415) before any call out."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fashionrec_testing.supervisor import free_port

from .conftest import REDIS

pytestmark = pytest.mark.integration
METRIC = re.compile(r'^gateway_errors_total\{code="unsupported_media"\} (\S+)$', re.M)


class Gateway:
    def __init__(self, proc: subprocess.Popen[str], port: int, grpc_port: int, metrics: Path):
        self.proc, self.port, self.grpc_port, self.metrics = proc, port, grpc_port, metrics
        self.url = f"http://127.0.0.1:{port}"

    def workers(self) -> set[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        spawned = {int(pid) for pid in children.split()}
        # multiprocessing's resource tracker is a child too; workers are the ones serving
        return {pid for pid in spawned if "spawn_main" in _cmdline(pid)}

    def refuse(self, times: int) -> None:
        """``times`` 415s, each on a new connection (the kernel spreads connections)."""
        for _ in range(times):
            with httpx.Client(base_url=self.url, timeout=10) as client:
                reply = client.post("/v1/search", content=b"x", headers={"content-type": "a/b"})
                assert reply.status_code == 415, reply.text

    def refused_total(self) -> float:
        found = METRIC.search(httpx.get(f"{self.url}/metrics", timeout=10).text)
        return float(found.group(1)) if found else 0.0


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _wait(check, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s: {check}")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    port, grpc_port = free_port(), free_port()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = os.environ | {
        "REDIS_URL": REDIS,
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRPC_PORT": str(grpc_port),
        "GATEWAY_CACHE_PREFIX": f"gw-workers-test:{port}:",
        "GATEWAY_LOG_JSON": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),  # an operator's own: kept, and readable here
    }
    log = (tmp_path / "gateway.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--dev", "--workers", "2"],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    gw = Gateway(proc, port, grpc_port, metrics)
    try:
        _wait(lambda: httpx.get(f"{gw.url}/healthz", timeout=2).status_code == 200)
        _wait(lambda: len(gw.workers()) == 2)
        yield gw
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        log.close()
        sys.stderr.write((tmp_path / "gateway.log").read_text()[-3000:])  # shown on failure


def test_gw_workers_share_the_port_and_the_metrics(gateway: Gateway) -> None:
    gateway.refuse(24)
    # every worker answered some (a metrics file per worker pid), and /metrics, answered by
    # whichever worker, counts all 24
    files = {p.name for p in gateway.metrics.glob("counter_*.db")}
    assert {f"counter_{pid}.db" for pid in gateway.workers()} <= files
    assert gateway.refused_total() == 24.0
    with grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:  # worker 0's
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_gw_worker_that_dies_is_replaced_and_counts_are_kept(gateway: Gateway) -> None:
    gateway.refuse(10)
    before = gateway.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: len(gateway.workers()) == 2 and victim not in gateway.workers())
    _wait(lambda: gateway.refuse(6) is None)  # the new worker is listening too
    assert gateway.refused_total() == 16.0  # the dead worker's 415s are still counted


def test_gw_sigterm_stops_every_worker(gateway: Gateway) -> None:
    workers = gateway.workers()
    gateway.proc.send_signal(signal.SIGTERM)
    assert gateway.proc.wait(30) == 0
    assert not [pid for pid in workers if _alive(pid)]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gateway.url}/healthz", timeout=2)


def test_gw_workers_follow_a_killed_parent(gateway: Gateway) -> None:
    """SIGKILL (the OOM killer) gives the parent no chance to stop them: the workers must not
    live on holding the port."""
    workers = gateway.workers()
    gateway.proc.kill()
    gateway.proc.wait(10)
    _wait(lambda: not [pid for pid in workers if _alive(pid)], timeout_s=30)
