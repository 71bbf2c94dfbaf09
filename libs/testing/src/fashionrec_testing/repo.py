"""Python files of this repository that no package installs, loaded as modules by the tests:
scripts/demo.py (scripts/ is not a package) and a service's test fakes used from elsewhere."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[4]


def load_file(path: Path, name: str) -> ModuleType:
    """The file at ``path`` run as a new module ``name``, registered in ``sys.modules``
    (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_demo() -> ModuleType:
    """scripts/demo.py, the steps of `make demo`, as the module ``fashionrec_demo``."""
    return load_file(REPO / "scripts" / "demo.py", "fashionrec_demo")
