"""Schemathesis over the OpenAPI spec against `python -m gateway` with real deps: no 500s.

The gateway starts from the system description, as `make demo` starts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_schemathesis_finds_no_server_errors(embedder_url, shard, supervisor, system) -> None:
    st = Path(sys.executable).with_name("schemathesis")
    if not st.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed in this environment")
    system.catalog.mkdir(parents=True, exist_ok=True)
    child = system.start(supervisor, "gateway", timeout_s=60)  # annotation is not running
    base = system.url("gateway")
    try:
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
                f"X-API-Key: {system.api_key}",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
        )
    finally:
        supervisor.stop(child)
    assert run.returncode == 0, run.stdout[-4000:]
