"""The Python images' table (deploy/images/images.txt), as the deploy tests read it.

build-venv.sh reads the same rows in the image build; the tests use them to know what each
image runs (``python -m MODULE`` plus default arguments) and how it is health-checked.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

IMAGES_DIR = Path(__file__).resolve().parents[4] / "deploy" / "images"


@dataclass(frozen=True)
class ImageRow:
    service: str  # folder under services/, the SERVICE build argument
    module: str  # python -m MODULE
    health: str  # fashionrec_common.probe target
    args: tuple[str, ...]  # default arguments (replaced by any given)

    @property
    def program(self) -> list[str]:
        return ["python", "-m", self.module]


def image_rows(folder: Path = IMAGES_DIR) -> dict[str, ImageRow]:
    """Rows by service, in file order."""
    rows = {}
    for line in (folder / "images.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            service, module, health, *args = shlex.split(line)
            rows[service] = ImageRow(service, module, health, tuple(args))
    return rows
