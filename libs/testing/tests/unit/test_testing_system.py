"""The local system description: templates, tuning guard, readiness probes (real servers)."""

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from grpc_health.v1 import health, health_pb2

from fashionrec_testing.health import grpc_health_server
from fashionrec_testing.system import BY_NAME, SERVICES, LocalSystem, default_ports


@pytest.fixture
def system(tmp_path: Path) -> LocalSystem:
    return LocalSystem.on_free_ports(
        models=tmp_path / "models", catalog=tmp_path / "catalog", state=tmp_path / "state"
    )


def test_every_service_gets_its_own_ports_and_the_others_addresses(system: LocalSystem) -> None:
    env = system.env("gateway")
    assert env["GATEWAY_EMBEDDER_URL"] == f"grpc://{system.address('embedder', 'grpc')}"
    rest = replace(system, embedder_api="rest").env("gateway")
    assert rest["GATEWAY_EMBEDDER_URL"] == system.url("embedder", "http")
    with pytest.raises(ValueError, match="embedder_api"):
        replace(system, embedder_api="soap")
    assert env["GATEWAY_VECTOR_SEARCH_ADDRESS"] == system.address("vector-search", "grpc")
    assert env["GATEWAY_ANNOTATION_URL"] == system.url("annotation")
    assert env["GATEWAY_PORT"] == str(system.port("gateway"))
    assert system.env("annotation")["ANNOTATION_GATEWAY_PUBLIC_URL"] == system.url("gateway")
    argv = system.argv("vector-search")
    assert argv[1:3] == ["-m", "vector_search"]
    assert f"--port={system.port('vector-search', 'grpc')}" in argv
    assert f"--data-dir={system.state}/vector-search" in argv
    assert f"--model_config_file={system.models}/models.config" in system.argv("embedder")
    assert {p for s in SERVICES for p in system.ports[s.name].values()}.isdisjoint(
        {p for s in SERVICES for p in s.ports.values()}
    ), "free ports, not the deploy ones"


def test_tuning_adds_knobs_but_never_rewires(system: LocalSystem) -> None:
    tuned = replace(system, tuning={"gateway": {"GATEWAY_RATE_LIMIT_PER_MINUTE": "0"}})
    assert tuned.env("gateway")["GATEWAY_RATE_LIMIT_PER_MINUTE"] == "0"
    with pytest.raises(ValueError, match="GATEWAY_EMBEDDER_URL"):
        replace(system, tuning={"gateway": {"GATEWAY_EMBEDDER_URL": "http://elsewhere"}})
    with pytest.raises(ValueError, match="needs ports"):
        replace(system, ports={**default_ports(), "gateway": {"http": 1}})


def test_another_instance_moves_only_that_service(system: LocalSystem, tmp_path: Path) -> None:
    second = system.another("gateway", tmp_path / "s2")
    assert second.ports["gateway"] != system.ports["gateway"]
    assert second.ports["vector-search"] == system.ports["vector-search"]
    assert second.state == tmp_path / "s2"


def test_milvus_store_drops_vector_search_and_points_the_gateway_at_a_lite_file(
    system: LocalSystem,
) -> None:
    faiss_env = system.env("gateway")
    assert "GATEWAY_VECTOR_STORE" not in faiss_env and "vector-search" in system.services()
    milvus = replace(system, vector_store="milvus")
    env = milvus.env("gateway")
    assert env["GATEWAY_VECTOR_STORE"] == "milvus"
    assert env["GATEWAY_MILVUS_URI"] == f"{system.state}/milvus.db"
    assert not {"GATEWAY_VECTOR_SEARCH_ADDRESS", "GATEWAY_VECTOR_SEARCH_TOKEN"} & set(env)
    assert env["GATEWAY_EMBEDDER_URL"] == faiss_env["GATEWAY_EMBEDDER_URL"]
    assert milvus.services() == [s.name for s in SERVICES if s.name != "vector-search"]
    with pytest.raises(ValueError, match="GATEWAY_MILVUS_URI"):
        replace(milvus, tuning={"gateway": {"GATEWAY_MILVUS_URI": "http://elsewhere:19530"}})
    with pytest.raises(ValueError, match="vector_store"):
        replace(system, vector_store="annoy")


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    with grpc_health_server() as served:
        yield served


def test_grpc_services_are_ready_only_when_serving(
    system: LocalSystem, health_server: tuple[int, health.HealthServicer]
) -> None:
    assert not system.ready("vector-search"), "nothing listens yet"
    port, servicer = health_server
    on_port = replace(system, ports={**system.ports, "vector-search": {"grpc": port, "metrics": 1}})
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert not on_port.ready("vector-search"), "an open port is not readiness"
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert on_port.ready("vector-search")
    assert BY_NAME["embedder"].ready == BY_NAME["vector-search"].ready


def test_http_services_are_ready_only_on_readyz(system: LocalSystem) -> None:
    status = {"/readyz": 503, "/healthz": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status.get(self.path, 404))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        on_port = replace(system, ports={**system.ports, "gateway": {"http": port, "grpc": 1}})
        assert not on_port.ready("gateway"), "/healthz answering is not enough"
        status["/readyz"] = 200
        assert on_port.ready("gateway")
    finally:
        server.shutdown()
        server.server_close()
