"""Every environment variable the deployment files set must be one the service reads:
a misspelt or mis-prefixed name (GATEWAY_REDIS_URL for REDIS_URL) is silently ignored by
pydantic-settings, so it is checked here against the services' settings classes."""

from __future__ import annotations

import functools
import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import AliasChoices

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate")

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {
    "gateway": ("gateway.config", "GatewaySettings"),
    "annotation": ("annotation.config", "AnnotationSettings"),
    "vector-search": ("vector_search.config", "VectorSearchSettings"),
}


def accepted_names(service: str) -> set[str]:
    module, name = SETTINGS[service]
    cls = getattr(importlib.import_module(module), name)
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for field, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice).upper() for choice in alias.choices}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field}".upper())
    return names


def unknown(service: str, env_names: set[str]) -> set[str]:
    return env_names - accepted_names(service)


def test_deploy_settings_check_catches_a_wrong_name() -> None:
    assert unknown("gateway", {"REDIS_URL", "GATEWAY_EMBEDDER_URL"}) == set()
    assert unknown("gateway", {"GATEWAY_REDIS_URL"}) == {"GATEWAY_REDIS_URL"}


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_deploy_compose_env_names_are_settings(service: str) -> None:
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    assert unknown(service, set(compose["services"][service].get("environment", {}))) == set()


@functools.cache
def rendered(overlay: str) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(REPO / "deploy" / "k8s" / overlay)],
                         capture_output=True, text=True, check=True, timeout=60).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("service", sorted(SETTINGS))
@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod-gpu"])
def test_deploy_k8s_env_names_are_settings(service: str, overlay: str) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    docs = rendered(overlay)
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    workload = next(
        d for d in docs
        if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == service
    )  # fmt: skip
    container = workload["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(maps[source["configMapRef"]["name"]])
    assert names, f"{service} gets no settings"
    assert unknown(service, names) == set()
