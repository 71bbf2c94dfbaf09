"""The whole system as processes, as `make demo` runs it, on a tiny catalogue.

A real InfoGAN is trained for a few steps at 32 px through the `embedder train`
CLI and exported, a random-weights control is exported beside it, every service
starts under the same supervisor `make demo` uses, and the gateway's ingest CLI
indexes the catalogue. Real photos from ../shared are used when present,
otherwise generated ones.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from fashionrec_common.supervisor import Child, Supervisor, free_port, http_ok, tcp_open

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "fashion-product-images-small"
CLASSES = {"shoes": ["heels", "flip_flops", "sports_shoes"], "handbags": ["handbags", "backpacks"]}
PER_CLASS = 10
SECRET = "e2e-vote-secret"
ADMIN = "e2e-admin"
API_KEY = "e2e-key"


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
                if real:
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


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(a) for a in argv], check=True, cwd=ROOT, capture_output=True, text=True, **kwargs
    )


@dataclass
class System:
    gateway: str
    annotation: str
    embedder: str
    vector_search_port: int
    gateway_grpc_port: int
    catalog: Path
    supervisor: Supervisor
    annotator_token: str
    env: dict[str, str]
    children: dict[str, Child]

    def stop(self, name: str) -> None:
        self.supervisor.stop(self.children[name])
        self.supervisor.children.remove(self.children[name])

    def start_annotation(self) -> None:
        child = self.supervisor.start("annotation", [PY, "-m", "annotation"], env=self.env)
        self.supervisor.wait_until(child, lambda: http_ok(f"{self.annotation}/healthz"), 60)
        self.children["annotation"] = child

    def photo(self, cls: str = "heels") -> bytes:
        path = next((self.catalog / "images" / cls).glob("*.jpg"))
        image = (
            Image.open(path).convert("RGB").resize((90, 120))
        )  # a "new" photo, not a stored file
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85)
        return out.getvalue()


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    work = tmp_path_factory.mktemp("system")
    catalog = make_catalogue(work / "catalog")
    models = work / "models"
    run([PY, "-m", "embedder", "train", "--catalog", catalog, "--out", work / "run",
         "--image-size", "32", "--batch-size", "8", "--max-steps", "3", "--no-progress",
         "--test-fraction", "0.2"], timeout=600)  # fmt: skip
    run([PY, "-m", "embedder", "export", "--run", work / "run", "--model-base", models,
         "--name", "infogan"], timeout=600)  # fmt: skip
    run([PY, "-m", "embedder", "export", "--random", "--model", "infogan", "--image-size", "32",
         "--model-base", models, "--name", "random_infogan"], timeout=600)  # fmt: skip

    ports = {name: free_port() for name in ("rest", "grpc", "vs", "ann", "gw", "gwgrpc")}
    gateway = f"http://127.0.0.1:{ports['gw']}"
    annotation = f"http://127.0.0.1:{ports['ann']}"
    embedder = f"http://127.0.0.1:{ports['rest']}"
    env = {
        "GATEWAY_EMBEDDER_URL": embedder,
        "GATEWAY_VECTOR_SEARCH_SHARDS": f"127.0.0.1:{ports['vs']}",
        "GATEWAY_ANNOTATION_URL": annotation,
        "GATEWAY_CATALOG_DIR": str(catalog),
        "GATEWAY_API_KEYS": API_KEY,
        "GATEWAY_VOTE_TOKEN_SECRET": SECRET,
        "GATEWAY_PORT": str(ports["gw"]),
        "GATEWAY_GRPC_PORT": str(ports["gwgrpc"]),
        "GATEWAY_CORS_ORIGINS": annotation,
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "ANNOTATION_VOTE_TOKEN_SECRET": SECRET,
        "ANNOTATION_DATABASE_URL": f"sqlite:///{work / 'annotation.db'}",
        "ANNOTATION_GATEWAY_PUBLIC_URL": gateway,
        "ANNOTATION_ADMIN_KEY": ADMIN,
        "ANNOTATION_PORT": str(ports["ann"]),
    }
    log = (work / "services.log").open("w")
    with Supervisor(out=log, colour=False, grace_s=10) as sup:
        emb = sup.start("embedder", [PY, "-m", "embedder.serving", "--port", str(ports["grpc"]),
                        "--rest_api_port", str(ports["rest"]),
                        "--model_config_file", str(models / "models.config")], env=env)  # fmt: skip
        vs = sup.start("vector-search", [PY, "-m", "vector_search", "--port", str(ports["vs"]),
                       "--data-dir", str(work / "vs")], env=env)  # fmt: skip
        ann = sup.start("annotation", [PY, "-m", "annotation"], env=env)
        gw = sup.start("gateway", [PY, "-m", "gateway"], env=env)
        sup.wait_until(emb, lambda: http_ok(f"{embedder}/v1/models/infogan"), timeout_s=180)
        sup.wait_until(emb, lambda: http_ok(f"{embedder}/v1/models/random_infogan"), timeout_s=60)
        sup.wait_until(vs, lambda: tcp_open("127.0.0.1", ports["vs"]), timeout_s=60)
        sup.wait_until(ann, lambda: http_ok(f"{annotation}/healthz"), timeout_s=60)
        sup.wait_until(gw, lambda: http_ok(f"{gateway}/healthz"), timeout_s=60)
        run([PY, "-m", "gateway", "ingest", "--catalog", catalog,
             "--models", "infogan,random_infogan", "--embedder-url", embedder,
             "--shards", f"127.0.0.1:{ports['vs']}"], timeout=600)  # fmt: skip
        token = run([PY, "-m", "annotation", "add-annotator", "e2e-annotator"], env={
            **__import__("os").environ, **env}).stdout.strip().splitlines()[-1]  # fmt: skip
        children = {"embedder": emb, "vector-search": vs, "annotation": ann, "gateway": gw}
        yield System(gateway, annotation, embedder, ports["vs"], ports["gwgrpc"], catalog, sup,
                     token, env, children)  # fmt: skip
    log.close()


@pytest.fixture
def client(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway, timeout=60) as http:
        yield http
