"""/docs and /redoc work in a closed network: every asset they load comes from the service."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from annotation.config import AnnotationSettings
from annotation.transport.rest.app import create_app
from fashionrec_testing.api_docs import PAGES, check_local_asset, local_references

from ..conftest import SECRET, running_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("docs") / "annotation.db"
    settings = AnnotationSettings(database_url=f"sqlite:///{db}", vote_token_secret=SECRET)
    with running_server(create_app(settings)) as url, httpx.Client(base_url=url) as c:
        yield c


@pytest.mark.parametrize("page", PAGES)
def test_docs_pages_load_only_local_assets(client: httpx.Client, page: str) -> None:
    for ref in local_references(client.get(page)):
        check_local_asset(ref, client.get(ref))
