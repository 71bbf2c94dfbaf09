"""Real processes for the gateway's integration tests: embedder server, vector-search, Redis.

The embedder (toy models) and vector-search start from the system description
(fashionrec_testing.system) on free ports. The gateway itself runs in-process (ASGI) with
its real clients, so faults are made by pointing it at closed ports or by stopping a process.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from PIL import Image

from fashionrec_testing.supervisor import Supervisor
from fashionrec_testing.system import LocalSystem
from gateway.config import GatewaySettings
from gateway.transport.rest.app import create_app
from gateway.wiring import Services, build_services

PY = sys.executable
REDIS = "redis://127.0.0.1:6379/7"
# vector-search runs with a token (as deployed); the gateway and the ingest CLI send it.
VS_TOKEN = "gw-test-vector-search-token"
EXPORT = """
import sys
from pathlib import Path
from fashionrec_testing.toy_model import export_toy_model, write_toy_models_config
base = Path(sys.argv[1])
export_toy_model(base, "infogan", 1, size=8, dim=16, warmup=False)
export_toy_model(base, "mobilenet_v2", 1, size=8, dim=12, warmup=False)
write_toy_models_config(base, ["infogan", "mobilenet_v2"])
"""


def image(seed: int, size: int = 24) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="session")
def supervisor(tmp_path_factory) -> Iterator[Supervisor]:
    log = (tmp_path_factory.mktemp("logs") / "children.log").open("w")
    with Supervisor(out=log, colour=False, grace_s=5) as sup:
        yield sup
    log.close()


@pytest.fixture(scope="session")
def system(tmp_path_factory) -> LocalSystem:
    """Free ports for every service; the model repository holds two toy models."""
    base = tmp_path_factory.mktemp("system")
    return LocalSystem.on_free_ports(
        models=base / "models",
        catalog=base / "catalog",
        state=base / "state",
        vector_search_token=VS_TOKEN,
        tuning={
            "embedder": {"EMBEDDER_SERVING_LOG_JSON": "false"},
            "gateway": {"GATEWAY_RATE_LIMIT_PER_MINUTE": "0", "REDIS_URL": REDIS},
        },
    )


@pytest.fixture(scope="session")
def embedder_url(supervisor, system: LocalSystem) -> str:
    subprocess.run([PY, "-c", EXPORT, str(system.models)], check=True, timeout=120)
    system.start(supervisor, "embedder", timeout_s=180)  # SERVING once both models load
    return system.url("embedder")


@pytest.fixture(scope="session")
def vector_search(supervisor, system: LocalSystem) -> str:
    system.start(supervisor, "vector-search", timeout_s=60)
    return system.address("vector-search")


@contextmanager
def unique_prefix(url: str) -> Iterator[str]:
    """A fresh ``gwtest:<uuid>:`` key prefix; every key under it in ``url``'s db goes after."""
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with unique_prefix(REDIS) as prefix:
        yield prefix


def ingest_env() -> dict[str, str]:
    """The environment for ``python -m gateway ingest``: the token vector-search expects."""
    return {**os.environ, "GATEWAY_VECTOR_SEARCH_TOKEN": VS_TOKEN}


def gw_settings(**overrides: object) -> GatewaySettings:
    base: dict[str, object] = {
        "api_keys": "test-key",
        "vote_token_secret": "test-secret",
        "vector_search_token": VS_TOKEN,
        "rate_limit_per_minute": 0,
        "breaker_reset_s": 1.0,
        "search_timeout_s": 2.0,
        "embed_timeout_s": 10.0,
    }
    return GatewaySettings(**(base | overrides))


@dataclass
class Gateway:
    client: httpx.AsyncClient
    services: Services


@pytest.fixture
async def make_gateway() -> AsyncIterator:
    """``await make_gateway(settings)`` -> a Gateway with real clients (closed after the test)."""
    stack: list = []

    async def make(settings: GatewaySettings) -> Gateway:
        services = build_services(settings)
        app = create_app(settings, services)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30
        )
        stack.append((client, lifespan, services))
        return Gateway(client, services)

    yield make
    for client, lifespan, services in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await services.close()


def write_catalog(root: Path, n: int, category: str = "shoes") -> list[str]:
    """images/<class>/<id>.png and labels.csv with the gateway's ingest columns."""
    ids = []
    with (root / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "category", "class", "product_id", "base_colour", "product_title"])
        for i in range(n):
            cls = "heels" if i % 2 else "flats"
            path = Path("images") / cls / f"{1000 + i}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(image(i))
            writer.writerow([path.as_posix(), category, cls, 1000 + i, "Black", f"Shoe {i}"])
            ids.append(str(1000 + i))
        (root / "images" / "broken.png").write_bytes(b"\x89PNG broken")
        writer.writerow(["images/broken.png", category, "flats", 9999, "Red", "Broken"])
    return ids
