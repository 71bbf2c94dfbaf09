"""Fixtures for the serving tests: a toy model repository and a real server process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fashionrec_testing.supervisor import free_port
from fashionrec_testing.toy_model import export_toy_model, write_toy_models_config

MODELS = ("alpha", "beta")
LABELS = 'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }'
POLICY = "model_version_policy { all {} }"


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    rest_port: int
    log_path: Path

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_server(
    args: list[str],
    log_path: Path,
    wait_model: str,
    timeout_s: float = 90,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Run ``python -m embedder_server`` on free ports; wait until ``wait_model`` answers."""
    grpc_port, rest_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "embedder_server", "--port", str(grpc_port)]
    cmd += ["--rest_api_port", str(rest_port), *args]
    env = {
        **os.environ,
        "EMBEDDER_SERVING_LOG_JSON": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(proc, grpc_port, rest_port, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{server.log()}")
        try:
            r = httpx.get(f"{server.rest_url}/v1/models/{wait_model}", timeout=1)
            if r.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"server not ready in {timeout_s}s:\n{server.log()}")


def stop_server(server: ServerProcess) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two toy models x two versions; alpha has labels stable=1 and canary=2."""
    base = tmp_path_factory.mktemp("models")
    for name in MODELS:
        for version in (1, 2):
            export_toy_model(base, name, version)
    write_toy_models_config(base, list(MODELS), extra=f"{POLICY} {LABELS}")
    return base


@pytest.fixture(scope="session")
def server(model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = [
        "--model_config_file", str(model_repo / "models.config"),
        "--enable_batching", "--max_batch_size", "8", "--batch_timeout_micros", "2000",
        "--file_system_poll_wait_seconds", "0.5",
        "--max_image_pixels", "10000", "--max_request_bytes", "200000",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("logs") / "server.log"
    # test_handle_reload_config_request reloads the config: the one legitimate user of it.
    srv = start_server(args, log, "alpha", env={"EMBEDDER_SERVING_ALLOW_MODEL_MANAGEMENT": "true"})
    yield srv
    stop_server(srv)
