"""The embedder's readiness checks run for real against a fake TF Serving REST port:
deploy/tfserving/healthcheck.sh (image HEALTHCHECK, compose) and the exec probe in
deploy/k8s/base/embedder.yaml must pass only when the model is AVAILABLE."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fashionrec_testing.supervisor import free_port

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "tfserving" / "healthcheck.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


class FakeTFServing(ThreadingHTTPServer):
    """Answers GET /v1/models/<name> like TF Serving, with a settable state."""

    state = "AVAILABLE"
    model = "infogan"


class Handler(BaseHTTPRequestHandler):
    server: FakeTFServing

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path != f"/v1/models/{self.server.model}":
            body, code = {"error": f"Servable not found for request: Latest({self.path})"}, 404
        else:
            status = {"version": "3", "state": self.server.state, "status": {"error_code": "OK"}}
            body, code = {"model_version_status": [status]}, 200
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[FakeTFServing]:
    server = FakeTFServing(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def probe_command() -> list[str]:
    docs = yaml.safe_load_all((REPO / "deploy" / "k8s" / "base" / "embedder.yaml").read_text())
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    command = container["readinessProbe"]["exec"]["command"]
    assert command == container["startupProbe"]["exec"]["command"]
    return command


CHECKS = {"image": lambda: ["bash", str(SCRIPT)], "k8s-probe": probe_command}


def run_check(which: str, port: int, model: str = "infogan") -> int:
    env = {**os.environ, "REST_PORT": str(port), "READY_MODEL": model}
    return subprocess.run(CHECKS[which](), env=env, capture_output=True, timeout=10).returncode


@pytest.mark.parametrize("which", sorted(CHECKS))
def test_deploy_embedder_check_passes_only_when_available(fake: FakeTFServing, which: str) -> None:
    port = fake.server_address[1]
    assert run_check(which, port) == 0
    fake.state = "LOADING"
    assert run_check(which, port) != 0
    fake.state = "AVAILABLE"
    assert run_check(which, port, model="dcgan") != 0, "a missing model is not ready"
    assert run_check(which, free_port()) != 0, "nothing listening is not ready"
