"""Each Python service image's install, replayed without a container engine.

The builder stage of deploy/images/Dockerfile runs as written for the service's SERVICE build
argument, with /opt and /src mapped into a temporary folder that holds the build context
(what .dockerignore lets through). The venv they create is
a plain one (no system site-packages), so it holds exactly what the image installs. Then,
with the sources deleted as in the runtime stage, the image's ENTRYPOINT runs with --help and
every module of the service imports: a dependency that the image does not install fails here.

Differences from a real build, on purpose: pip may use its cache (the Dockerfiles set
PIP_NO_CACHE_DIR to keep layers small), and `python` is this machine's Python 3.11 rather
than the image's. The TensorFlow Serving image installs no Python, and the two TensorFlow
images (SERVICE=embedder/server and embedder/workbench, about 600 MB each) are left to
`make demo`'s venv.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fashionrec_testing.images import ImageRow, image_rows
from fashionrec_testing.supervisor import tcp_open

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "images" / "Dockerfile"
REPLAYED = ["annotation", "gateway", "vector-search"]  # the images without TensorFlow
PYTHON = Path(getattr(sys, "_base_executable", sys.executable))  # not the workspace venv's
ABSOLUTE = re.compile(r"(?<![\w./-])/(opt|src)(?=/|\b)")


@dataclass
class Stage:
    name: str
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    steps: list[tuple[str, str]] = field(default_factory=list)  # (COPY|RUN, arguments)
    entrypoint: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not current and not line):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, rest = current.partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def stages(text: str) -> dict[str, Stage]:
    """Stages by name, with ARG defaults (global and per stage) expanded."""
    global_args: dict[str, str] = {}
    found: dict[str, Stage] = {}
    stage: Stage | None = None

    def expand(value: str, args: dict[str, str]) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), value)

    for word, rest in instructions(text):
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            (stage.args if stage else global_args)[key] = value.strip('"')
        elif word == "FROM":
            name = rest.split()[-1] if " AS " in rest.upper() else str(len(found))
            stage = found[name] = Stage(name, args=dict(global_args))
        elif stage is None:
            continue
        elif word == "ENV":
            for pair in shlex.split(expand(rest, stage.args)):
                key, _, value = pair.partition("=")
                stage.env[key] = value
        elif word == "WORKDIR":
            stage.workdir = rest
        elif word in ("COPY", "RUN"):
            stage.steps.append((word, expand(rest, stage.args)))
        elif word == "ENTRYPOINT":
            stage.entrypoint = json.loads(rest)
    return found


def context_roots() -> list[str]:
    """.dockerignore's allow-list (it starts by excluding everything): the context's roots."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip()[1:].rstrip("/") for line in lines if line.strip().startswith("!")]


def ignore_rules() -> tuple[list[str], list[str]]:
    """.dockerignore's exclusions after its allow-list: (basename globs, repo-relative paths)."""
    names, paths = [], []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip().rstrip("/")
        if not line or line.startswith(("#", "!")) or line == "**":
            continue
        if line.startswith("**/"):
            names.append(line.removeprefix("**/"))
        else:
            paths.append(line)
    return names, paths


def copy_context(source: str, dest: Path) -> None:
    """COPY from the repository root as Docker would, without what .dockerignore drops."""
    names, paths = ignore_rules()

    def ignore(folder: str, entries: list[str]) -> set[str]:
        rel = Path(folder).relative_to(REPO)
        return {
            e for e in entries if any(fnmatch.fnmatch(e, n) for n in names) or str(rel / e) in paths
        }

    if source == ".":  # the whole context
        for root in context_roots():
            copy_context(root, dest / root)
        return
    src = REPO / source
    if src.is_dir():
        shutil.copytree(src, dest, ignore=ignore, dirs_exist_ok=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / src.name if dest.is_dir() else dest)


def mapped(value: str, root: Path) -> str:
    """The image's /opt/... and /src/... paths, inside ``root``."""
    return ABSOLUTE.sub(lambda m: f"{root}/{m[1]}", value)


def plain_env(path: str) -> dict[str, str]:
    """A container's start: no VIRTUAL_ENV or PYTHONPATH of ours. The machine's pip config (where
    packages come from) still applies; the Dockerfile's PIP_CONSTRAINT overrides its lock."""
    keep = ("HOME", "LANG", "TMPDIR", "SSL_CERT_FILE")
    return {"PATH": path, **{k: os.environ[k] for k in keep if k in os.environ}}


def build(row: ImageRow, root: Path) -> tuple[Stage, dict[str, str]]:
    """Replay the builder stage for ``row`` into ``root``; the runtime stage and environment."""
    text = DOCKERFILE.read_text().replace("ARG SERVICE\n", f"ARG SERVICE={row.service}\n")
    found = stages(text)
    builder, runtime = found["builder"], list(found.values())[-1]
    shim = root / "usr" / "local" / "bin"  # the base image's `python`
    shim.mkdir(parents=True)
    (shim / "python").symlink_to(PYTHON)
    system_path = f"{shim}:/usr/local/bin:/usr/bin:/bin"
    env = plain_env(system_path)
    env.update({k: mapped(v, root) for k, v in builder.env.items()})
    env.update(VENV=f"{root}/opt/venv", TOOLS=f"{root}/opt/protoc")  # build-venv.sh's /opt
    env.pop("PIP_NO_CACHE_DIR", None)  # the one deliberate difference: reuse downloads
    workdir = Path(mapped(builder.workdir, root))
    workdir.mkdir(parents=True, exist_ok=True)
    for word, rest in builder.steps:
        if word == "COPY":
            *sources, target = [p for p in rest.split() if not p.startswith("--")]
            dest = Path(mapped(target, root)) if target.startswith("/") else workdir / target
            dest = workdir if target == "." else dest
            for source in sources:
                copy_context(source, dest)
            continue
        proc = subprocess.run(
            ["/bin/sh", "-c", mapped(rest, root)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, f"RUN {rest}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    shutil.rmtree(workdir)  # the runtime stage copies only the venv
    run_env = plain_env(system_path)
    for key, value in runtime.env.items():
        run_env[key] = mapped(value, root).replace("$PATH", system_path)
    run_env["HOME"] = str(root)
    return runtime, run_env


def test_deploy_images_replay_parses_our_dockerfiles() -> None:
    """The parser sees what the replay relies on (cheap; runs with the unit tests)."""
    assert set(REPLAYED) < set(image_rows())
    found = stages(DOCKERFILE.read_text().replace("ARG SERVICE\n", "ARG SERVICE=gateway\n"))
    assert found["builder"].env["PIP_CONSTRAINT"] == "/src/requirements/constraints.txt"
    assert ("RUN", 'sh deploy/images/build-venv.sh "gateway" ""') in found["builder"].steps
    assert found["runtime"].entrypoint == ["service"]
    assert "deploy/images" in context_roots() and "services" in context_roots()
    assert mapped("PIP_CONSTRAINT=/src/x --python_out=libs/common/src /opt/venv", Path("/r")) == (
        "PIP_CONSTRAINT=/r/src/x --python_out=libs/common/src /r/opt/venv"
    )


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("service", REPLAYED)
def test_deploy_image_installs_what_its_entry_point_imports(service: str, tmp_path) -> None:
    row = image_rows()[service]
    runtime, env = build(row, tmp_path / "image")
    assert runtime.entrypoint == ["service"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    help_ = subprocess.run(
        ["service", "--help"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert help_.returncode == 0 and "usage:" in help_.stdout, help_.stderr[-3000:]
    health = subprocess.run(["service-healthcheck"], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    target = urlsplit(row.health)
    if target.hostname and target.port and tcp_open(target.hostname, target.port):
        # A service of this machine (a running `make demo`) holds the image's port: the probe
        # only has to run from the image's venv and give a verdict.
        assert health.returncode in (0, 1) and "Traceback" not in health.stderr, health.stderr
    else:
        assert health.returncode == 1 and f"unhealthy: {row.health}" in health.stderr
    # --help may not reach lazily imported modules (a subcommand's), so import them all.
    walk = (
        "import importlib, pkgutil, sys\n"
        f"import {row.module} as p\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "assert not any(s.startswith(sys.base_prefix) and 'site-packages' in s"
        " for s in sys.path), sys.path\n"
        "print(len(names))\n"
    )
    imported = subprocess.run(
        ["python", "-c", walk], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert int(imported.stdout.split()[-1]) > 3
    if service == "vector-search" and shutil.which("pkg-config"):
        has_grpc = subprocess.run(["pkg-config", "--exists", "grpc++"], check=False).returncode
        if has_grpc == 0:  # the image's builder installs it, so the front must be in the image
            front = subprocess.run(
                ["python", "-c", "from vector_search.native.front import open_front\n"
                 "print(open_front('on', None).stats())"],
                cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert front.returncode == 0, front.stderr[-3000:]
            assert "'native': 0" in front.stdout
