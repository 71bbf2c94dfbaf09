"""The embedder for a benchmark, started from the one description of the local system.

Same module, flags, environment and readiness (grpc.health.v1) as `make demo` and the
end-to-end tests; only the model list (one model) and the benchmark's extra flags differ.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fashionrec_testing.supervisor import Child, Supervisor
from fashionrec_testing.system import LocalSystem

QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "EMBEDDER_SERVING_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Served:
    system: LocalSystem
    child: Child
    log: Path


@contextmanager
def served_embedder(
    base_path: Path, name: str, extra_args: Sequence[str] = (), timeout_s: float = 180
) -> Iterator[Served]:
    """Serve the versions under ``base_path`` as model ``name`` until the block ends."""
    models = Path(tempfile.mkdtemp(prefix="bench-models-"))
    (models / "models.config").write_text(
        f'model_config_list {{ config {{ name: "{name}" base_path: "{base_path.resolve()}" '
        'model_platform: "tensorflow" } }\n'
    )
    system = LocalSystem.on_free_ports(
        models=models, catalog=models, state=models, tuning={"embedder": QUIET}
    )
    log = models / "server.log"
    with Supervisor(out=log.open("w"), colour=False) as sup:
        argv = [*system.argv("embedder"), *extra_args]
        child = system.start(sup, "embedder", argv=argv, timeout_s=timeout_s)
        yield Served(system, child, log)
