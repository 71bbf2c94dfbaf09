"""/docs and /redoc work in a closed network: every asset they load comes from the gateway."""

from __future__ import annotations

import pytest

from fashionrec_testing.api_docs import PAGES, check_local_asset, local_references


@pytest.mark.parametrize("page", PAGES)
async def test_docs_pages_load_only_local_assets(rig, page: str) -> None:
    for ref in local_references(await rig.client.get(page)):
        check_local_asset(ref, await rig.client.get(ref))
