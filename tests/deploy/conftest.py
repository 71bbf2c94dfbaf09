"""What the deploy tests share: the Kubernetes overlays as kubectl renders them."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def rendered(overlay: str) -> list[dict]:
    """The objects of ``deploy/k8s/<overlay>``; the test is skipped without kubectl or PyYAML."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate")
    out = subprocess.run(["kubectl", "kustomize", str(REPO / "deploy" / "k8s" / overlay)],
                         capture_output=True, text=True, check=True, timeout=60).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


def k8s_container(docs: list[dict], service: str) -> tuple[dict, dict[str, str | None]]:
    """The first container of ``service``'s Deployment or StatefulSet, and its environment:
    the ConfigMaps it takes with envFrom, then its own env (None: a value from a secret)."""
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    workload = next(
        d for d in docs
        if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == service
    )  # fmt: skip
    container = workload["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env |= maps[source["configMapRef"]["name"]]
    for e in container.get("env", []):
        env[e["name"]] = e.get("value")
    return container, env
