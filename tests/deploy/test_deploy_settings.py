"""Every environment variable the deployment files set must be one the service reads:
a misspelt or mis-prefixed name (GATEWAY_REDIS_URL for REDIS_URL) is silently ignored by
pydantic-settings, so it is checked here against the services' settings classes."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pydantic import AliasChoices

from .conftest import k8s_container, rendered

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


@pytest.mark.parametrize("service", sorted(SETTINGS))
@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod-gpu"])
def test_deploy_k8s_env_names_are_settings(service: str, overlay: str) -> None:
    _, env = k8s_container(rendered(overlay), service)
    names = set(env)
    assert names, f"{service} gets no settings"
    assert unknown(service, names) == set()
