"""A FastAPI app whose /docs and /redoc work in a closed network: no request leaves the host.

fastapi-offline serves Swagger UI and ReDoc from the package, but ReDoc's bundle still
asks ``cdn.redoc.ly`` for its footer logo. Our /redoc serves a copy of the bundle with that
URL replaced by an empty ``data:`` image (the logo's onError hides it), so the page makes
no outside request at all. FastAPI is imported lazily (only web services call this);
without ``from __future__ import annotations`` the routes resolve ``Request`` at definition.
"""

from functools import cache
from pathlib import Path
from typing import Any

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
BUNDLE_PATH = "/docs-assets/redoc.standalone.js"


@cache
def redoc_bundle() -> bytes:
    """The packaged ReDoc bundle with its only outside URL removed."""
    import fastapi_offline

    bundle = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    return bundle.read_bytes().replace(REDOC_LOGO.encode(), b"data:,")


def offline_docs_app(**kwargs: Any) -> Any:
    """``FastAPIOffline(**kwargs)`` with our own /redoc page and bundle."""
    from fastapi import Request, Response
    from fastapi.openapi.docs import get_redoc_html
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(redoc_url=None, **kwargs)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{BUNDLE_PATH}",
            redoc_favicon_url=f"{root}/static-offline-docs/favicon.png",
            with_google_fonts=False,
        )

    @app.get(BUNDLE_PATH, include_in_schema=False)
    async def bundle() -> Response:
        return Response(
            redoc_bundle(),
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return app
