"""The whole system as processes, started the way `make demo` starts it, on a tiny catalogue.

The demo's own steps (scripts/demo.py): its sample of the catalogue (labels.csv plus an
``images/`` link to the original photos), a short InfoGAN run through the `embedder train`
CLI exported as the default model, every service of fashionrec_testing.system on free ports,
ingest through the gateway's CLI, an annotator made by its CLI. For speed the catalogue has
100 photos, the run 3 steps, and the second model is a random-weights control (32 px)
instead of the ImageNet baselines. Real photos from ../shared are used when present,
otherwise generated ones.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from fashionrec_testing.repo import load_demo
from fashionrec_testing.supervisor import Child, Supervisor
from fashionrec_testing.system import LocalSystem, free_ports

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "fashion-product-images-small"
CLASSES = {"shoes": ["heels", "flip_flops", "sports_shoes"], "handbags": ["handbags", "backpacks"]}
PER_CLASS = 20  # 80 training images: the demo's run trains with batches of 64
TRAIN_STEPS = 3
CONTROL = "random_infogan"


def _synthetic(path: Path, cls_index: int, i: int) -> None:
    """A white-background product-like picture whose shape and colour depend on the class."""
    rng = np.random.default_rng(cls_index * 100 + i)
    img = Image.new("RGB", (60, 80), "white")
    draw = ImageDraw.Draw(img)
    colour = tuple(int(c) for c in rng.integers(0, 200, 3))
    box = (8 + i % 5, 15 + i % 7, 52 - i % 4, 65 - i % 6)
    shape = cls_index % 5
    if shape == 0:
        draw.ellipse(box, fill=colour)
    elif shape == 1:
        draw.rectangle(box, fill=colour)
    elif shape == 2:
        draw.polygon([(30, 10), (8, 70), (52, 70)], fill=colour)
    else:
        (draw.chord if shape == 3 else draw.pieslice)(box, 0, 200, fill=colour)
    img.save(path, "JPEG", quality=90)


def make_catalogue(out: Path) -> Path:
    rows = []
    shared_rows: list[dict[str, str]] = []
    if (SHARED / "labels.csv").exists():
        with (SHARED / "labels.csv").open(newline="") as handle:
            shared_rows = list(csv.DictReader(handle))
    index = 0
    for category, classes in CLASSES.items():
        for cls in classes:
            (out / "images" / cls).mkdir(parents=True, exist_ok=True)
            real = [r for r in shared_rows if r["class"] == cls][:PER_CLASS]
            for i in range(PER_CLASS):
                rel = f"images/{cls}/{1000 * (index + 1) + i}.jpg"
                if len(real) == PER_CLASS:
                    src = real[i]
                    (out / rel).write_bytes((SHARED / src["path"]).read_bytes())
                    colour, title = src["base_colour"], src["product_title"]
                else:
                    _synthetic(out / rel, index, i)
                    colour, title = "Mixed", f"Synthetic {cls} {i}"
                rows.append(
                    {"path": rel, "category": category, "class": cls,
                     "product_id": Path(rel).stem, "base_colour": colour,
                     "product_title": title}
                )  # fmt: skip
            index += 1
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


@dataclass
class System:
    local: LocalSystem
    supervisor: Supervisor
    children: dict[str, Child]
    annotator_token: str
    source: Path  # the shop's own catalogue, which the demo samples
    args: object  # the demo's parsed arguments

    @property
    def gateway(self) -> str:
        return self.local.url("gateway")

    @property
    def annotation(self) -> str:
        return self.local.url("annotation")

    @property
    def embedder(self) -> str:
        return self.local.url("embedder")

    @property
    def vector_search_port(self) -> int:
        return self.local.port("vector-search", "grpc")

    @property
    def gateway_grpc_port(self) -> int:
        return self.local.port("gateway", "grpc")

    @property
    def catalog(self) -> Path:
        return self.local.catalog

    def stop(self, name: str) -> None:
        self.supervisor.stop(self.children[name])
        self.supervisor.children.remove(self.children[name])

    def start(self, name: str) -> None:
        self.children[name] = self.local.start(self.supervisor, name, timeout_s=60)

    def photo(self, cls: str = "heels") -> bytes:
        """A "new" photo of the class (resized and re-encoded), not a stored file."""
        path = next((self.catalog / "images" / cls).glob("*.jpg"))
        image = Image.open(path).convert("RGB").resize((90, 120))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85)
        return out.getvalue()


@pytest.fixture(scope="session")
def demo() -> ModuleType:
    return load_demo()


@pytest.fixture(scope="session")
def system(demo: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    work = tmp_path_factory.mktemp("system")
    source = make_catalogue(work / "shop")
    args = demo.parse_args(
        ["--catalog", str(source), "--var", str(work / "var"), "--sample", "0",
         "--train-steps", str(TRAIN_STEPS), "--background-epochs", "0", "--baselines", "none"]
    )  # fmt: skip
    catalog, models = demo.prepare(args)
    subprocess.run(
        [PY, "-m", "embedder", "export", "--random", "--head", "flat", "--image-size",
         "32", "--catalog", str(source), "--split-from", str(demo.run_dir(args) / "split.json"),
         "--model-base", str(args.var / "models"), "--name", CONTROL],
        check=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    local = replace(
        demo.local_system(args, catalog, ports=free_ports()),
        tuning={"gateway": {"GATEWAY_RATE_LIMIT_PER_MINUTE": "0"}},
    )
    log = (work / "services.log").open("w")
    with Supervisor(out=log, colour=False, grace_s=10) as sup:
        children = local.start_all(sup)
        demo.index_catalog(args, local, [*models, CONTROL])
        token = demo.demo_annotator(args, local)
        yield System(local, sup, children, token, source, args)
    log.close()


@pytest.fixture
def client(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway, timeout=60) as http:
        yield http
