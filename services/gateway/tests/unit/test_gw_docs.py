"""/docs and /redoc work in a closed network: every asset they load comes from the gateway."""

from __future__ import annotations

import re

import pytest

# href/src/spec-url attributes and Swagger UI's `url: '...'` (the OpenAPI document).
REFERENCE = re.compile(r"""(?:\b(?:href|src|spec-url)=|\burl:\s*)["']([^"']+)["']""")
# An absolute http(s) URL used as an image or script source inside a JS bundle.
OUTSIDE_ASSET = re.compile(r"""src:\s*["']https?://[^"']+["']""")
TYPES = {".js": "javascript", ".css": "text/css", ".json": "application/json"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_local_assets(rig, page: str) -> None:
    html = await rig.client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert not re.search(r"https?://|//cdn", html.text), "the page names an outside host"
    refs = REFERENCE.findall(html.text)
    assert any(r.endswith(".js") for r in refs) and "/openapi.json" in refs, refs
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        got = await rig.client.get(ref)
        assert got.status_code == 200 and len(got.content) > 100, ref
        kind = next((t for ext, t in TYPES.items() if ref.endswith(ext)), None)
        if kind is not None:
            assert kind in got.headers["content-type"], (ref, got.headers["content-type"])
        if ref.endswith(".js"):
            # ReDoc's packaged bundle loads its logo from cdn.redoc.ly: ours must not.
            assert not OUTSIDE_ASSET.search(got.text), (ref, OUTSIDE_ASSET.search(got.text))
