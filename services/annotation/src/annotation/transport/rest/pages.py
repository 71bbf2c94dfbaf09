"""HTML pages: shop, annotator (paper Fig. 8.9) and leaderboard. The JS calls the gateway."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)


@cache
def _templates() -> Jinja2Templates:
    return Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "web" / "templates")


def _render(request: Request, template: str, page: str) -> HTMLResponse:
    settings = request.app.state.settings
    # Everything here is readable by anyone who opens the page: public values only, never a
    # key. The pages only read from the gateway; votes carry the annotator's own token.
    config = {"gatewayUrl": settings.gateway_public_url.rstrip("/"), "page": page}
    return _templates().TemplateResponse(request, template, {"config": config, "page": page})


@router.get("/", response_class=HTMLResponse)
def shop(request: Request) -> HTMLResponse:
    return _render(request, "shop.html", "shop")


@router.get("/annotate", response_class=HTMLResponse)
def annotate(request: Request) -> HTMLResponse:
    return _render(request, "annotate.html", "annotate")


@router.get("/leaderboard", response_class=HTMLResponse)
def leaderboard(request: Request) -> HTMLResponse:
    return _render(request, "leaderboard.html", "leaderboard")
