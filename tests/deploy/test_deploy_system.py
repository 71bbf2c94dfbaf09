"""deploy/ against the one description of the system (fashionrec_testing.system.SERVICES).

Compose and the Kubernetes overlays must run each service as described: the same program,
the same environment names and flags (in both directions: what the description sets is
deployed, and what is deployed is described, at least as deploy-only), the same wiring
values (ports, addresses of the other services), the same ports and the same readiness
probes. So a line removed from the description, or a port changed on one side, fails here.
overlays/prod-milvus is checked against the description's ``milvus`` vector store
(VECTOR_STORES): the gateway's environment as that choice changes it, no vector-search.
"""

from __future__ import annotations

import functools
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from fashionrec_testing.images import image_rows
from fashionrec_testing.system import (
    SERVICES,
    VECTOR_STORES,
    GrpcHealth,
    HttpReady,
    ModelAvailable,
    Probe,
    Service,
)

from .conftest import k8s_container, rendered

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate")

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "docker-compose.yml"
OVERLAYS = ["overlays/dev", "overlays/prod-gpu", "overlays/prod-milvus"]
TARGETS = ["compose", *OVERLAYS]
STORE = {"overlays/prod-milvus": "milvus"}  # the others run our FAISS service
IMAGES = image_rows()


def runs(target: str) -> list[Service]:
    """The services ``target`` deploys: all but those its vector store does without."""
    without = VECTOR_STORES[STORE.get(target, "faiss")].without
    return [s for s in SERVICES if s.name not in without]


def each(targets: list[str]) -> list[object]:
    """(target, service) parameters for every service a target deploys."""
    return [pytest.param(t, s, id=f"{t}-{s.name}") for t in targets for s in runs(t)]


SERVICE_KEYS = {s.key for s in SERVICES}
COMPOSE_DEFAULT = re.compile(r"\$\{[A-Z0-9_]+(?::?-([^}]*))?(?::?\?[^}]*)?\}")


@dataclass
class Deployed:
    """One service as a deploy target runs it."""

    argv: list[str]
    env: dict[str, str | None]  # None: a secret or a required variable without a value
    ports: dict[str, int]  # container ports by name (compose: by number)
    probes: list[object]  # compose healthcheck test, or k8s readiness and startup probes
    container_env: dict[str, str | None]


def image_command(service: str, build: dict | None) -> tuple[list[str], list[str]]:
    """(program, default arguments) that ``service``'s image runs: for the Python images what
    their ``service`` wrapper execs (deploy/images/images.txt, by the SERVICE build argument,
    or the service's own name); for TF Serving its Dockerfile's ENTRYPOINT."""
    row = IMAGES.get((build or {}).get("args", {}).get("SERVICE", service))
    if row is not None:
        return row.program, list(row.args)
    text = (REPO / "services" / service / "Dockerfile").read_text().replace("\\\n", " ")
    entry = [ln.split(None, 1)[1] for ln in text.splitlines() if ln.startswith("ENTRYPOINT")]
    return json.loads(entry[-1]), []


def compose_value(value: object) -> str | None:
    """``${X:-default}`` -> default; a required or plain ``${X}`` -> None."""
    text = str(value)
    if COMPOSE_DEFAULT.search(text) and not all(
        m.group(1) is not None for m in COMPOSE_DEFAULT.finditer(text)
    ):
        return None
    return COMPOSE_DEFAULT.sub(lambda m: m.group(1), text)


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def deployed(target: str, service: str) -> Deployed:
    if target == "compose":
        svc = compose()["services"][service]
        entry, cmd = image_command(service, svc.get("build"))
        env = {k: compose_value(v) for k, v in svc.get("environment", {}).items()}
        ports = {}
        for mapping in svc.get("ports", []):
            port = int(str(mapping).rsplit(":", 1)[1])
            ports[str(port)] = port
        test = svc["healthcheck"]["test"]
        return Deployed(entry + svc.get("command", cmd), env, ports, [test], env)
    c, env = k8s_container(rendered(target), service)
    if "command" in c:
        argv = c["command"] + c.get("args", [])
    else:
        entry, cmd = image_command(service, None)
        argv = entry + c.get("args", cmd)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    probes = [c[p] for p in ("readinessProbe", "startupProbe") if p in c]
    return Deployed(argv, env, ports, probes, env)


def flags(args: list[str]) -> dict[str, str | None]:
    """``--a=1 --b 2 --c`` -> {"--a": "1", "--b": "2", "--c": None}."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        assert name.startswith("--"), f"unexpected argument {args[i]!r}"
        if not eq and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 1
        out[name] = value if eq or value else None
        i += 1
    return out


def program(service: Service) -> list[str]:
    return list(service.deploy_command) or ["python", "-m", service.module]


def described(service: Service, store: str = "faiss") -> dict[str, str | None]:
    """Env names and flags of the description, as templates, with ``store`` chosen."""
    env = dict(service.env)
    if service.name == "gateway":
        env = VECTOR_STORES[store].gateway_env(env)
    return {**env, **flags(list(service.args))}


def shown(target: str, service: Service) -> dict[str, str | None]:
    """Env names and flags of a deploy target."""
    d = deployed(target, service.name)
    return {**d.env, **flags(d.argv[len(program(service)) :])}


def comparable(template: str, target: str) -> bool:
    """Values made only of service addresses and ports (plus the public host for compose,
    which publishes on localhost) must match; folders and secrets differ by design."""
    roots = {f.split(".")[0] for _, f, _, _ in string.Formatter().parse(template) if f}
    return roots <= SERVICE_KEYS | ({"public"} if target == "compose" else set())


def render(template: str) -> str:
    """The template with deploy's values: each service reachable by its name."""
    values = {s.key: SimpleNamespace(host=s.name, **s.ports) for s in SERVICES}
    return template.format_map({**values, "public": "localhost"})


def one_address_per_service(value: str) -> str:
    """StatefulSet pods (vector-search-1.vector-search:50051) stand for their service."""
    items = [re.sub(r"^(\w+://)?([a-z-]+)-\d+\.\2(?=:)", r"\1\2", v) for v in value.split(",")]
    return ",".join(dict.fromkeys(items))


@pytest.mark.parametrize(("target", "service"), each(TARGETS))
def test_deploy_runs_the_described_program(target: str, service: Service) -> None:
    argv = deployed(target, service.name).argv
    assert argv[: len(program(service))] == program(service)


@pytest.mark.parametrize(("target", "service"), each(TARGETS))
def test_deploy_sets_the_described_names_and_wiring(target: str, service: Service) -> None:
    local, deploy = described(service, STORE.get(target, "faiss")), shown(target, service)
    missing = set(local) - set(deploy) - service.local_only
    assert not missing, f"described but not in {target}: {sorted(missing)}"
    extra = set(deploy) - set(local) - service.deploy_only
    assert not extra, f"{target} sets what the description does not: {sorted(extra)}"
    for name in set(local) & set(deploy):
        template = local[name]
        if template is not None and comparable(template, target):
            want = one_address_per_service(render(template))
            got = deploy[name] and one_address_per_service(deploy[name])
            assert got == want, f"{target} {name}={deploy[name]!r}, described {want!r}"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_deploy_only_and_local_only_names_are_current(service: Service) -> None:
    local = set().union(*(described(service, store) for store in VECTOR_STORES))
    anywhere = set().union(*(shown(t, service) for t in TARGETS if service in runs(t)))
    assert service.deploy_only <= anywhere - local, "deploy-only names no deploy file sets"
    assert service.local_only <= local - anywhere, "local-only names that are deployed"


@pytest.mark.parametrize(("overlay", "service"), each(OVERLAYS))
def test_deploy_k8s_ports_are_the_described_ones(overlay: str, service: Service) -> None:
    assert deployed(overlay, service.name).ports == dict(service.ports)
    services = {d["metadata"]["name"]: d for d in rendered(overlay) if d["kind"] == "Service"}
    svc = services[service.name]
    for port in svc["spec"]["ports"]:
        assert port["port"] == service.ports[port["targetPort"]], port


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_deploy_compose_publishes_only_described_ports(service: Service) -> None:
    assert set(deployed("compose", service.name).ports.values()) <= set(service.ports.values())


def probe_matches(probe: Probe, found: object, d: Deployed, ports: dict[str, int]) -> bool:
    """Whether a compose healthcheck (a list) or a k8s probe (a dict) checks ``probe``."""
    port = ports[probe.port]
    if isinstance(found, list):  # compose: ["CMD", ...]
        text = " ".join(found)
        if isinstance(probe, GrpcHealth):
            return "HealthStub" in text and f"127.0.0.1:{port}" in text and "SERVING" in text
        if isinstance(probe, HttpReady):
            return f"http://127.0.0.1:{port}{probe.path}" in text
        script = (REPO / "deploy" / "tfserving" / "healthcheck.sh").read_text()
        return found == ["CMD", "/usr/local/bin/tfserving-healthcheck"] and (
            "/v1/models/" in script and '"AVAILABLE"' in script and f"REST_PORT:-{port}" in script
        )
    assert isinstance(found, dict)
    if isinstance(probe, GrpcHealth):
        return found.get("grpc", {}).get("port") == port
    if isinstance(probe, HttpReady):
        get = found.get("httpGet", {})
        named = get.get("port")
        return get.get("path") == probe.path and d.ports.get(named, named) == port
    assert isinstance(probe, ModelAvailable)
    command = " ".join(found.get("exec", {}).get("command", []))
    return (
        "/v1/models/" in command
        and '"AVAILABLE"' in command
        and "REST_PORT" in command
        and d.container_env.get("REST_PORT") == str(port)
    )


@pytest.mark.parametrize(("target", "service"), each(TARGETS))
def test_deploy_probes_are_the_described_readiness(target: str, service: Service) -> None:
    d = deployed(target, service.name)
    probe = service.deploy_ready or service.ready
    assert d.probes, f"{target} has no readiness probe for {service.name}"
    for found in d.probes:
        assert probe_matches(probe, found, d, dict(service.ports)), f"{target}: {found}"
