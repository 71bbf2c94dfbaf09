"""Checks that /docs and /redoc (fashionrec_common.api_docs) work in a closed network: the
page names no outside host and every asset it loads comes from the service itself.

The services' tests fetch with their own client (sync or async) and hand the responses here.
"""

from __future__ import annotations

import re
from typing import Any

PAGES = ("/docs", "/redoc")
# href/src/spec-url attributes and Swagger UI's `url: '...'` (the OpenAPI document).
REFERENCE = re.compile(r"""(?:\b(?:href|src|spec-url)=|\burl:\s*)["']([^"']+)["']""")
# An absolute http(s) URL used as an image or script source inside a JS bundle.
OUTSIDE_ASSET = re.compile(r"""src:\s*["']https?://[^"']+["']""")
TYPES = {".js": "javascript", ".css": "text/css", ".json": "application/json"}


def local_references(page: Any) -> list[str]:
    """The assets a docs page (an httpx response) loads, each checked to be a local path."""
    content_type = page.headers.get("content-type", "")
    assert page.status_code == 200 and "text/html" in content_type, (page.status_code, content_type)
    assert not re.search(r"https?://|//cdn", page.text), "the page names an outside host"
    refs = REFERENCE.findall(page.text)
    assert any(r.endswith(".js") for r in refs) and "/openapi.json" in refs, refs
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
    return refs


def check_local_asset(ref: str, got: Any) -> None:
    """``got`` (the response for ``ref``) is the asset, with its type; a script names no
    outside image or script (ReDoc's packaged bundle loads its logo from cdn.redoc.ly)."""
    assert got.status_code == 200 and len(got.content) > 100, ref
    kind = next((t for ext, t in TYPES.items() if ref.endswith(ext)), None)
    if kind is not None:
        assert kind in got.headers["content-type"], (ref, got.headers["content-type"])
    if ref.endswith(".js"):
        assert not OUTSIDE_ASSET.search(got.text), (ref, OUTSIDE_ASSET.search(got.text))
