"""The rules of the layers, checked on the source (no imports run): a newcomer can trust them.

- No import circles between modules (imports inside functions count too).
- Services never import each other; ``libs/common`` imports no service; no product package
  imports the test tooling (``fashionrec_testing``); the embedder server never imports the
  workbench (its image does not install it).
- A service's ``domain/`` imports no transport or storage library.
- No function over 60 lines outside tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# package -> its source root
PACKAGES = {
    "fashionrec_common": REPO / "libs/common/src",
    "fashionrec_testing": REPO / "libs/testing/src",
    "embedder_server": REPO / "services/embedder/server/src",
    "embedder": REPO / "services/embedder/workbench/src",
    "vector_search": REPO / "services/vector-search/src",
    "gateway": REPO / "services/gateway/src",
    "annotation": REPO / "services/annotation/src",
}
SERVICES = {"embedder_server", "embedder", "vector_search", "gateway", "annotation"}
DOMAIN_BANNED = ("fastapi", "starlette", "grpc", "redis", "sqlalchemy", "httpx", "uvicorn")
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(path: Path, name: str, is_package: bool) -> Iterator[str]:
    """Absolute module names imported anywhere in the file (relative imports resolved)."""
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[: len(base) - node.level + 1]
                module = ".".join(prefix + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets = set()
        for target in imported(path, name, path.name == "__init__.py"):
            if target in mods and target != name and not name.startswith(target + "."):
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_arch_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_arch_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_arch_package_imports_only_what_its_layer_allows(package: str) -> None:
    allowed = {package, "fashionrec_common", "fashionrec"}
    if package == "fashionrec_testing":
        allowed |= SERVICES  # the test tooling may drive any service
    if package == "embedder":
        allowed.add("embedder_server")  # the workbench may use the server; never the reverse
    mods = modules()
    wrong = sorted(
        f"{name} imports {target}"
        for name, path in mods.items()
        if _top(name) == package
        for target in imported(path, name, path.name == "__init__.py")
        if _top(target) in PACKAGES and _top(target) not in allowed
    )
    assert wrong == []


def test_arch_domain_imports_no_transport_or_storage() -> None:
    mods = modules()
    wrong = sorted(
        f"{name} imports {target}"
        for name, path in mods.items()
        if ".domain" in name
        for target in imported(path, name, path.name == "__init__.py")
        if _top(target) in DOMAIN_BANNED
    )
    assert wrong == []


def long_functions(roots: list[Path]) -> list[str]:
    out = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(REPO)
            if "tests" in rel.parts or "migrations" in rel.parts or "fashionrec" in rel.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                    if lines > MAX_FUNCTION_LINES:
                        out.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_arch_no_function_over_60_lines_outside_tests() -> None:
    roots = [REPO / "libs", REPO / "services", REPO / "scripts", REPO / "bench"]
    assert long_functions(roots) == []
