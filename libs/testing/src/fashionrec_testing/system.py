"""The local system, described once: services, ports, arguments, environment, readiness.

`make demo` (scripts/demo.py), the end-to-end tests, the gateway's integration tests and the
benchmarks start services from :data:`SERVICES`; tests/deploy checks deploy/ (compose and
Kubernetes) against it, both ways: the same environment names, ports, flags and probes.
A service is ready when its gRPC server answers grpc.health.v1 SERVING or its HTTP server
answers ``/readyz``, never merely when its port accepts connections.

Arguments and environment values are templates filled from a :class:`LocalSystem`:
``{embedder.http}`` is the embedder's port named ``http`` and ``{embedder.host}`` its host
(``vector_search`` for vector-search); ``{models}``, ``{catalog}`` and ``{state}`` are its
folders; ``{api_key}``, ``{vote_secret}``, ``{admin_key}``, ``{vector_search_token}`` and
``{gateway_grpc_token}`` its secrets (the last two guard internal gRPC); ``{public}`` is
the host a browser uses. So each address is written once, where its service is described.
:data:`VECTOR_STORES` describes the gateway's store choice (our FAISS service or Milvus).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fashionrec_testing.supervisor import Child, Supervisor, free_port, http_ok


@dataclass(frozen=True)
class GrpcHealth:
    """grpc.health.v1 ``Check`` on the named port answers SERVING (the server as a whole)."""

    port: str


@dataclass(frozen=True)
class HttpReady:
    """``GET path`` on the named port answers 2xx."""

    port: str
    path: str = "/readyz"


@dataclass(frozen=True)
class ModelAvailable:
    """TF Serving's REST model status lists a version AVAILABLE (tensorflow/serving has no
    grpc.health.v1, so deploy/ asks this instead)."""

    port: str


Probe = GrpcHealth | HttpReady | ModelAvailable


@dataclass(frozen=True)
class Service:
    """One service: ``python -m module *args`` with ``env``, listening on ``ports``.

    ``ports`` are the ones deploy/ uses; local runs may move them (free ports in tests).
    ``deploy_only`` names the variables and flags deploy/ sets that local runs leave at
    their defaults (bind address, log format, Redis); ``local_only`` the reverse.
    """

    name: str
    module: str
    ports: Mapping[str, int]
    ready: Probe
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    deploy_command: tuple[str, ...] = ()  # deploy/ runs this program instead of the module
    deploy_ready: Probe | None = None  # deploy/'s probe, when its program differs
    deploy_only: frozenset[str] = frozenset()
    local_only: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """The name as a template field (``vector_search``)."""
        return self.name.replace("-", "_")


SERVICES: tuple[Service, ...] = (
    Service(
        "embedder",
        module="embedder_server",
        ports={"grpc": 8500, "http": 8501},
        ready=GrpcHealth("grpc"),  # SERVING once every configured model has a version
        args=(
            "--port={embedder.grpc}",
            "--rest_api_port={embedder.http}",
            "--model_config_file={models}/models.config",
            "--enable_batching",
            # One thread per op: small models, concurrent requests (docs/benchmarks.md).
            "--tensorflow_intra_op_parallelism=1",
        ),
        deploy_command=("tensorflow_model_server",),
        deploy_ready=ModelAvailable("http"),
        deploy_only=frozenset(
            {
                "--model_config_file_poll_wait_seconds",
                "--file_system_poll_wait_seconds",
                "--monitoring_config_file",
                "READY_MODEL",
                "REST_PORT",
            }
        ),
        local_only=frozenset({"--enable_batching"}),
    ),
    Service(
        "vector-search",
        module="vector_search",
        ports={"grpc": 50051, "metrics": 9102},
        ready=GrpcHealth("grpc"),  # SERVING once snapshots and the write-ahead log are loaded
        args=(
            "--port={vector_search.grpc}",
            "--data-dir={state}/vector-search",
            "--metrics-port={vector_search.metrics}",
        ),
        env={"VECTOR_SEARCH_AUTH_TOKENS": "{vector_search_token}"},
        deploy_only=frozenset(
            {
                "VECTOR_SEARCH_HOST",
                "VECTOR_SEARCH_LOG_LEVEL",
                "VECTOR_SEARCH_LOG_JSON",
                "VECTOR_SEARCH_USE_GPU",  # prod-gpu: the faiss-gpu image on a GPU node
            }
        ),
    ),
    Service(
        "annotation",
        module="annotation",
        ports={"http": 8090},
        ready=HttpReady("http"),  # the database answers
        env={
            "ANNOTATION_PORT": "{annotation.http}",
            "ANNOTATION_DATABASE_URL": "sqlite:///{state}/annotation.db",
            "ANNOTATION_VOTE_TOKEN_SECRET": "{vote_secret}",
            "ANNOTATION_ADMIN_KEY": "{admin_key}",
            "ANNOTATION_GATEWAY_PUBLIC_URL": "http://{public}:{gateway.http}",
        },
        deploy_only=frozenset({"ANNOTATION_HOST", "ANNOTATION_LOG_LEVEL", "ANNOTATION_LOG_JSON"}),
    ),
    Service(
        "gateway",
        module="gateway",
        ports={"http": 8080, "grpc": 8081},
        ready=HttpReady("http"),  # the embedder's default model and vector-search answer
        env={
            "GATEWAY_PORT": "{gateway.http}",
            "GATEWAY_GRPC_PORT": "{gateway.grpc}",
            "GATEWAY_EMBEDDER_URL": "{embedder_url}",
            "GATEWAY_VECTOR_SEARCH_ADDRESS": "{vector_search.host}:{vector_search.grpc}",
            "GATEWAY_VECTOR_SEARCH_TOKEN": "{vector_search_token}",
            "GATEWAY_GRPC_AUTH_TOKENS": "{gateway_grpc_token}",
            "GATEWAY_ANNOTATION_URL": "http://{annotation.host}:{annotation.http}",
            "GATEWAY_CATALOG_DIR": "{catalog}",
            "GATEWAY_API_KEYS": "{api_key}",
            "GATEWAY_VOTE_TOKEN_SECRET": "{vote_secret}",
            "GATEWAY_CORS_ORIGINS": "http://{public}:{annotation.http}",
            "GATEWAY_ROUTING_MODEL": "{routing_model}",
        },
        deploy_only=frozenset(
            {
                "GATEWAY_HOST",
                "GATEWAY_LOG_LEVEL",
                "GATEWAY_LOG_JSON",
                "GATEWAY_DEFAULT_MODEL",
                "GATEWAY_PUBLIC_URL",
                "REDIS_URL",  # unset locally: the gateway caches in process
                "GATEWAY_MILVUS_TOKEN",  # prod-milvus: the cluster's credentials; Lite has none
            }
        ),
    ),
)

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}


@dataclass(frozen=True)
class VectorStore:
    """What the gateway's GATEWAY_VECTOR_STORE choice changes: variables it adds to and
    drops from the gateway's environment (the ingest CLI reads the same), and services that
    do not run. deploy/k8s/overlays/prod-milvus is checked against the ``milvus`` one."""

    env: Mapping[str, str] = field(default_factory=dict)
    drops: frozenset[str] = frozenset()
    without: frozenset[str] = frozenset()

    def gateway_env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in env.items() if k not in self.drops} | dict(self.env)


VECTOR_STORES: dict[str, VectorStore] = {
    "faiss": VectorStore(),  # our vector-search service, one node (the default)
    "milvus": VectorStore(
        # A file path: Milvus Lite in the gateway's process (one process per file).
        env={"GATEWAY_VECTOR_STORE": "milvus", "GATEWAY_MILVUS_URI": "{state}/milvus.db"},
        drops=frozenset({"GATEWAY_VECTOR_SEARCH_ADDRESS", "GATEWAY_VECTOR_SEARCH_TOKEN"}),
        without=frozenset({"vector-search"}),
    ),
}


def default_ports() -> dict[str, dict[str, int]]:
    return {s.name: dict(s.ports) for s in SERVICES}


def free_ports(names: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """Every port of every (or each named) service on a port that was free a moment ago."""
    wanted = set(names) if names is not None else set(BY_NAME)
    ports = default_ports()
    for name in wanted:
        ports[name] = {port: free_port() for port in BY_NAME[name].ports}
    return ports


def grpc_serving(address: str, timeout_s: float = 1.0) -> bool:
    """True when the server at ``address`` answers grpc.health.v1 SERVING."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


# TF Serving's two APIs: URL scheme and which of the embedder's ports serves it.
EMBEDDER_APIS = {"grpc": ("grpc", "grpc"), "rest": ("http", "http")}


@dataclass(frozen=True)
class LocalSystem:
    """One local run: its folders, secrets, and every service's ports on ``host``.

    ``tuning`` adds environment per service (log level, rate limit, Redis) for tests and
    benchmarks; it may not change anything :data:`SERVICES` sets.
    """

    models: Path  # the model repository (models.config inside)
    catalog: Path  # the catalogue the gateway serves images from
    state: Path  # vector-search data and the annotation database
    ports: Mapping[str, Mapping[str, int]] = field(default_factory=default_ports)
    api_key: str = "local-api-key"
    vote_secret: str = "local-vote-token-secret"
    admin_key: str = "local-admin-key"
    vector_search_token: str = "local-vector-search-token"
    gateway_grpc_token: str = "local-gateway-grpc-token"
    host: str = "127.0.0.1"
    tuning: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    vector_store: str = "faiss"  # a key of VECTOR_STORES
    routing_model: str = ""  # routes uploads without a catalogue; empty = the requested model
    embedder_api: str = "grpc"  # how the gateway calls the embedder: TF Serving's "grpc" or "rest"

    def __post_init__(self) -> None:
        if self.vector_store not in VECTOR_STORES:
            raise ValueError(f"vector_store must be one of {sorted(VECTOR_STORES)}")
        if self.embedder_api not in EMBEDDER_APIS:
            raise ValueError(f"embedder_api must be one of {sorted(EMBEDDER_APIS)}")
        for name, extra in self.tuning.items():
            described = set(BY_NAME[name].env) | set(VECTOR_STORES[self.vector_store].env)
            clash = set(extra) & described
            if clash:
                raise ValueError(f"tuning may not override {name}'s {sorted(clash)}")
        for service in SERVICES:
            if set(self.ports[service.name]) != set(service.ports):
                raise ValueError(f"{service.name} needs ports {sorted(service.ports)}")

    @classmethod
    def on_free_ports(cls, **kwargs: object) -> LocalSystem:
        """Every service on a free loopback port (tests, benchmarks)."""
        return cls(ports=free_ports(), **kwargs)  # type: ignore[arg-type]

    def fields(self) -> dict[str, object]:
        """Values for the templates of :data:`SERVICES`."""
        out: dict[str, object] = {
            s.key: SimpleNamespace(host=self.host, **self.ports[s.name]) for s in SERVICES
        }
        out.update(
            models=self.models,
            catalog=self.catalog,
            state=self.state,
            api_key=self.api_key,
            vote_secret=self.vote_secret,
            admin_key=self.admin_key,
            vector_search_token=self.vector_search_token,
            gateway_grpc_token=self.gateway_grpc_token,
            routing_model=self.routing_model,
            public=self.host,
            embedder_url=self.embedder_url(),
        )
        return out

    def embedder_url(self) -> str:
        """The embedder as the gateway calls it (``embedder_api``)."""
        scheme, port = EMBEDDER_APIS[self.embedder_api]
        return f"{scheme}://{self.address('embedder', port)}"

    def services(self) -> list[str]:
        """The services this system runs, in start order (the store choice may drop some)."""
        without = VECTOR_STORES[self.vector_store].without
        return [s.name for s in SERVICES if s.name not in without]

    def port(self, name: str, port: str = "http") -> int:
        return self.ports[name][port]

    def address(self, name: str, port: str = "grpc") -> str:
        return f"{self.host}:{self.port(name, port)}"

    def url(self, name: str, port: str = "http") -> str:
        return f"http://{self.address(name, port)}"

    def argv(self, name: str) -> list[str]:
        service = BY_NAME[name]
        values = self.fields()
        return [sys.executable, "-m", service.module, *(a.format_map(values) for a in service.args)]

    def env(self, name: str) -> dict[str, str]:
        values = self.fields()
        templates = dict(BY_NAME[name].env)
        if name == "gateway":
            templates = VECTOR_STORES[self.vector_store].gateway_env(templates)
        env = {k: v.format_map(values) for k, v in templates.items()}
        return env | dict(self.tuning.get(name, {}))

    def ready(self, name: str) -> bool:
        probe = BY_NAME[name].ready
        if isinstance(probe, GrpcHealth):
            return grpc_serving(self.address(name, probe.port))
        if isinstance(probe, HttpReady):
            return http_ok(self.url(name, probe.port) + probe.path)
        raise TypeError(f"{name}: {probe} is a deploy-only probe")

    def start(self, sup: Supervisor, name: str, *, timeout_s: float = 180.0, **spawn: Any) -> Child:
        """:meth:`spawn` ``name`` (``argv``, ``label`` as there), then wait until it is ready."""
        child = self.spawn(sup, name, **spawn)
        sup.wait_until(child, lambda: self.ready(name), timeout_s=timeout_s)
        return child

    def spawn(
        self,
        sup: Supervisor,
        name: str,
        *,
        argv: Sequence[str] | None = None,
        label: str | None = None,
    ) -> Child:
        """Start ``name`` without waiting (``argv`` replaces the command, e.g. under a
        profiler)."""
        self.state.mkdir(parents=True, exist_ok=True)
        return sup.start(label or name, argv or self.argv(name), env=self.env(name))

    def start_all(
        self, sup: Supervisor, names: Sequence[str] | None = None, timeout_s: float = 300.0
    ) -> dict[str, Child]:
        """Start the services together, then wait for each in order (front doors last)."""
        order = [n for n in self.services() if names is None or n in names]
        children = {name: self.spawn(sup, name) for name in order}
        for name in order:
            sup.wait_until(children[name], lambda n=name: self.ready(n), timeout_s=timeout_s)
        return children

    def another(self, name: str, state: Path) -> LocalSystem:
        """The same system with a second instance of ``name``: fresh ports, its own state
        folder (e.g. a second gateway on the same stores)."""
        ports = {**self.ports, name: {p: free_port() for p in BY_NAME[name].ports}}
        return replace(self, ports=ports, state=state)

    def environ(self, name: str) -> dict[str, str]:
        """The full environment ``name`` runs with (for its own CLIs, e.g. add-annotator)."""
        return {**os.environ, **self.env(name)}
