"""docker-compose: validated offline against the Compose specification schema
(check-jsonschema's vendored compose-spec), then checked for what the schema allows but
we do not: missing health checks, start order without health, unset variables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with check-jsonschema")
pytest.importorskip("check_jsonschema", reason="check-jsonschema==0.39.0 is not installed")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILES = [DEPLOY / "docker-compose.yml", DEPLOY / "docker-compose.gpu.yml"]
SERVICES = {"embedder", "vector-search", "gateway", "annotation", "redis", "postgres"}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_deploy_compose_matches_the_compose_spec(path: Path) -> None:
    proc = check_compose_schema(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploy_compose_schema_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n  a:\n    image: redis:7.4.2-alpine\n"
        "    depends_on:\n      b:\n        condition: healthy\n"
        "    healthcheck:\n      test: [CMD, true]\n      intervall: 5s\n"
    )
    proc = check_compose_schema(broken)
    assert proc.returncode != 0
    assert "condition" in proc.stdout or "intervall" in proc.stdout


def test_deploy_compose_has_every_service_with_a_health_check(compose: dict) -> None:
    services = compose["services"]
    assert SERVICES <= set(services)
    for name in SERVICES:
        svc = services[name]
        assert svc["healthcheck"]["test"][0] == "CMD", name
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"


def test_deploy_compose_starts_in_order_of_health(compose: dict) -> None:
    services = compose["services"]
    assert set(services["gateway"]["depends_on"]) == {
        "embedder", "vector-search", "annotation", "redis"
    }  # fmt: skip
    assert set(services["annotation"]["depends_on"]) == {"postgres"}
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep}"
            assert "healthcheck" in services[dep], f"{dep} has no health check"


def test_deploy_compose_keeps_state_in_named_volumes(compose: dict) -> None:
    assert set(compose["volumes"]) == {"model-repository", "index-data", "postgres-data"}
    mounts = {
        name: {v.split(":")[0]: v.split(":")[1] for v in svc.get("volumes", [])}
        for name, svc in compose["services"].items()
    }
    assert mounts["embedder"]["model-repository"] == "/models"
    assert mounts["trainer"]["model-repository"] == "/models"
    assert mounts["vector-search"]["index-data"] == "/data"
    assert mounts["postgres"]["postgres-data"] == "/var/lib/postgresql/data"


def test_deploy_compose_wires_services_by_their_ports(compose: dict) -> None:
    env = compose["services"]["gateway"]["environment"]
    assert env["GATEWAY_EMBEDDER_URL"] == "grpc://embedder:8500"
    assert env["GATEWAY_VECTOR_SEARCH_ADDRESS"] == "vector-search:50051"
    assert env["GATEWAY_ANNOTATION_URL"] == "http://annotation:8090"
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    secret = compose["services"]["annotation"]["environment"]["ANNOTATION_VOTE_TOKEN_SECRET"]
    assert env["GATEWAY_VOTE_TOKEN_SECRET"] == secret, "both sides must share the token secret"
    for name in ("embedder", "vector-search", "gateway", "annotation"):
        svc = compose["services"][name]
        assert svc["read_only"] is True and svc["user"] == "10001:10001", name


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_deploy_every_compose_variable_is_in_env_example(path: Path) -> None:
    example = env_example()
    for name, default in VARIABLE.findall(path.read_text()):
        assert name in example, f"${{{name}}} is not in deploy/.env.example"
        if default.startswith(":?"):
            assert example[name], f"{name} is required but empty in .env.example"
