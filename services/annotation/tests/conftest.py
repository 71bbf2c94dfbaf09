"""Fixtures shared by the annotation tests: databases (SQLite and PostgreSQL) and tokens."""

from __future__ import annotations

import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from annotation.domain.tokens import Comparison, ShownRow, sign_comparison

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "test-vote-token-secret-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty database: a SQLite file, or a private schema in the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'annotation.db'}"
        return
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    schema = f"ann_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 (run make system-deps): {exc}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def make_comparison(
    models: tuple[str, ...] = ("infogan", "mobilenet_v2", "vgg16"),
    query_id: str = "q1",
    catalogue: str = "shoes",
) -> Comparison:
    rows = tuple(ShownRow(model=m, items=tuple(f"{m}-{i}" for i in range(5))) for m in models)
    return Comparison(query_id, catalogue, rows, secrets.token_hex(8))


def make_token(secret: str = SECRET, **kwargs: object) -> str:
    return sign_comparison(secret, make_comparison(**kwargs))  # type: ignore[arg-type]


@contextmanager
def running_server(app: Any, port: int = 0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread (on a free port unless given); yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
