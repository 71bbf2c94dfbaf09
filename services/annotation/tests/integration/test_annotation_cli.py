"""The real process: ``python -m annotation add-annotator`` then ``serve`` on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fashionrec_testing.supervisor import free_port

from ..conftest import SECRET, make_token

pytestmark = pytest.mark.integration


def test_cli_add_annotator_then_serve_and_vote(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",  # the plain variable is honoured
        "ANNOTATION_VOTE_TOKEN_SECRET": SECRET,
        "ANNOTATION_LOG_JSON": "false",
    }
    env.pop("ANNOTATION_DATABASE_URL", None)
    added = subprocess.run(
        [sys.executable, "-m", "annotation", "add-annotator", "cli-user"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    token = added.stdout.strip()
    assert token.startswith("ann_") and "\n" not in token
    again = subprocess.run(
        [sys.executable, "-m", "annotation", "add-annotator", "cli-user"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 1 and "exists already" in again.stderr

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "annotation", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "annotation exited early"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "annotation did not become ready"
            time.sleep(0.2)
        res = httpx.post(
            f"{base}/v1/votes",
            json={"token": make_token(), "choice": 1, "duration_ms": 5},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert res.status_code == 201 and res.json()["annotator"] == "cli-user"
        assert httpx.get(f"{base}/v1/leaderboard").json()["votes"] == 1
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    # uvicorn shuts down cleanly on SIGTERM, then re-raises the signal (exit status -15).
    assert "Application shutdown complete" in err, err
