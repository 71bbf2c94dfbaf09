"""Schemathesis over the OpenAPI spec against `python -m gateway` with real deps: no 500s."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fashionrec_common.supervisor import free_port, http_ok

from .conftest import REDIS

pytestmark = pytest.mark.integration


def test_schemathesis_finds_no_server_errors(embedder_url, shard, supervisor, tmp_path) -> None:
    st = Path(sys.executable).with_name("schemathesis")
    if not st.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed in this environment")
    port = free_port()
    env = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRPC_PORT": "0",
        "GATEWAY_EMBEDDER_URL": embedder_url,
        "GATEWAY_VECTOR_SEARCH_SHARDS": shard,
        "GATEWAY_API_KEYS": "st-key",
        "GATEWAY_VOTE_TOKEN_SECRET": "st-secret",
        "GATEWAY_ANNOTATION_URL": f"http://127.0.0.1:{free_port()}",
        "GATEWAY_CATALOG_DIR": str(tmp_path),
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "REDIS_URL": REDIS,
    }
    child = supervisor.start("gateway", [sys.executable, "-m", "gateway"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        supervisor.wait_until(child, lambda: http_ok(f"{base}/healthz"), timeout_s=30)
        run = subprocess.run(
            [
                str(st),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "8",
                "--seed",
                "1",
                "--request-timeout",
                "10",
                "--exclude-path-regex",
                "^/v1/(votes|items:batch)$",
                "-H",
                "X-API-Key: st-key",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
        )
    finally:
        supervisor.stop(child)
    assert run.returncode == 0, run.stdout[-4000:]
