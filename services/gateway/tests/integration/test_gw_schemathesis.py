"""Schemathesis over the OpenAPI spec against `python -m gateway` with real deps: no 500s,
no schema-valid request refused, every status documented.

The gateway starts from the system description, as `make demo` starts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


# Schema-valid requests may still be refused for what a schema cannot say: bytes that are
# valid base64 but not an image (415). Everything else the server enforces is in the schema
# (k maximum, catalogue names, model names, filters), so a 400 for a schema-valid request fails.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "415", "429"]
"""


def test_schemathesis_finds_no_server_errors_or_refused_valid_requests(
    embedder_url, vector_search, supervisor, system, tmp_path
) -> None:
    st = Path(sys.executable).with_name("schemathesis")
    if not st.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed in this environment")
    system.catalog.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    child = system.start(supervisor, "gateway", timeout_s=60)  # annotation is not running
    base = system.url("gateway")
    try:
        run = subprocess.run(
            [
                str(st),
                "--config-file",
                str(config),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "not_a_server_error,positive_data_acceptance,status_code_conformance",
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
    failures = run.stdout.find("FAILURES")
    assert run.returncode == 0, run.stdout[max(failures, 0) :][:8000]
