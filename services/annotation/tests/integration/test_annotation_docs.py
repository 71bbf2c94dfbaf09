"""/docs and /redoc work in a closed network: every asset they load comes from the service."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from annotation.config import AnnotationSettings
from annotation.transport.rest.app import create_app

from ..conftest import SECRET, running_server

pytestmark = pytest.mark.integration
# href/src/spec-url attributes and Swagger UI's `url: '...'` (the OpenAPI document).
REFERENCE = re.compile(r"""(?:\b(?:href|src|spec-url)=|\burl:\s*)["']([^"']+)["']""")
TYPES = {".js": "javascript", ".css": "text/css", ".json": "application/json"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("docs") / "annotation.db"
    settings = AnnotationSettings(database_url=f"sqlite:///{db}", vote_token_secret=SECRET)
    with running_server(create_app(settings)) as url, httpx.Client(base_url=url) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client: httpx.Client, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert not re.search(r"https?://|//cdn", html.text), "the page names an outside host"
    refs = REFERENCE.findall(html.text)
    assert any(r.endswith(".js") for r in refs) and "/openapi.json" in refs, refs
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        got = client.get(ref)
        assert got.status_code == 200 and len(got.content) > 100, ref
        kind = next((t for ext, t in TYPES.items() if ref.endswith(ext)), None)
        if kind is not None:
            assert kind in got.headers["content-type"], (ref, got.headers["content-type"])
