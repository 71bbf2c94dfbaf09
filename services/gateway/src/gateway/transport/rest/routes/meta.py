"""Models, catalogues, product images, compare rows, votes, health."""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from gateway.domain.compare import compare as compare_rows
from gateway.domain.timing import Timings
from gateway.errors import InvalidInput, NotFound
from gateway.transport.rest.deps import (
    ServicesDep,
    catalogue_or_auto,
    finish,
    image_base,
    item_json,
    rate_limit,
)
from gateway.transport.rest.routes.search import ERRORS
from gateway.transport.rest.schemas import CatalogueOut, CompareOut, ModelOut

router = APIRouter(tags=["catalogue"], dependencies=[Depends(rate_limit)])
health = APIRouter(tags=["health"])
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
}


def catalogue_file(root: Path, path: str) -> Path | None:
    """``root / path`` when ``path`` names a file below ``root`` by its parts alone, else None.

    The request path is checked lexically (relative, no ``..``), not its resolved target: links
    that the operator placed inside the catalogue (the demo's ``images/`` points to a shared
    folder) are followed, while a request can only walk down from ``root``.
    """
    rel = PurePosixPath(path)
    if rel.is_absolute() or not rel.parts or any(p == ".." or "\\" in p for p in rel.parts):
        return None
    target = root.joinpath(*rel.parts)
    try:
        return target if target.is_file() else None
    except (OSError, ValueError):  # a NUL byte, a name too long, a loop of links
        return None


@router.get("/v1/models", response_model=list[ModelOut], responses=ERRORS)
async def models(services: ServicesDep) -> list[dict[str, Any]]:
    """Models with an index in at least one catalogue, and the version the embedder serves."""
    by_model: dict[str, dict[str, Any]] = {}
    for summary in await services.recommender.indexes():
        entry = by_model.setdefault(
            summary.model,
            {
                "name": summary.model,
                "default": summary.model == services.settings.default_model,
                "catalogues": [],
                "dimension": summary.dimension,
            },
        )
        entry["catalogues"].append(summary.catalogue)
    for entry in by_model.values():
        entry["version"] = await services.recommender.model_version_or_none(entry["name"])
    return sorted(by_model.values(), key=lambda e: (not e["default"], e["name"]))


@router.get("/v1/catalogues", response_model=list[CatalogueOut], responses=ERRORS)
async def catalogues(services: ServicesDep) -> list[dict[str, Any]]:
    out = {c: {"name": c, "models": [], "items": 0} for c in services.settings.catalogues}
    for summary in await services.recommender.indexes():
        if summary.catalogue in out:
            out[summary.catalogue]["models"].append(summary.model)
            out[summary.catalogue]["items"] = max(out[summary.catalogue]["items"], summary.count)
    return list(out.values())


@router.get(
    "/v1/images/{path:path}",
    response_class=FileResponse,
    responses={404: {"description": "no such image"}},
    summary="Product images from GATEWAY_CATALOG_DIR",
)
async def image(path: str, services: ServicesDep) -> FileResponse:
    root = services.settings.catalog_dir
    if root is None:
        raise NotFound("no catalogue directory configured")
    target = catalogue_file(root, path)
    if target is None or target.suffix.lower() not in IMAGE_TYPES:
        raise NotFound("no such image")  # traversal and non-images look the same as absent
    return FileResponse(
        target,
        media_type=IMAGE_TYPES[target.suffix.lower()],
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get(
    "/v1/compare",
    response_model=CompareOut,
    responses=ERRORS,
    summary="Blinded rows of top-k per model for a human vote",
)
async def compare(
    request: Request,
    response: Response,
    services: ServicesDep,
    item_id: Annotated[str, Query(min_length=1)],
    models: Annotated[str, Query(examples=["infogan,mobilenet_v2"])],
    catalogue: Annotated[str | None, Query()] = None,
    k: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    start = time.perf_counter()
    timings = Timings()
    secret = services.settings.vote_token_secret
    assert secret is not None  # settings refuse to start without one
    query, chosen, rows, token = await compare_rows(
        services.recommender,
        item_id=item_id,
        catalogue=catalogue_or_auto(catalogue),
        models=models.split(","),
        k=k,
        secret=secret.get_secret_value(),
        timings=timings,
    )
    finish(response, services, "compare", timings, start)
    base = image_base(request, services)
    return {
        "query": item_json(base, query),
        "catalogue": chosen,
        "rows": [
            {
                "row": n,
                "items": [item_json(base, h) for h in hits],
            }
            for n, hits in enumerate(rows, 1)
        ],
        "token": token,
    }


@router.post(
    "/v1/votes",
    status_code=201,
    responses={400: {}, 401: {}, 409: {}, 503: {}},
    summary="Forwarded unchanged (body and Authorization) to the annotation service",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["token", "choice"],
                        "properties": {
                            "token": {"type": "string"},
                            "choice": {"type": "integer", "minimum": 0},
                            "duration_ms": {"type": "integer", "minimum": 0},
                        },
                    },
                    "example": {"token": "<from /v1/compare>", "choice": 2, "duration_ms": 5100},
                }
            },
        }
    },
)
async def votes(request: Request, services: ServicesDep) -> Response:
    body = await request.body()
    if len(body) > 64 * 1024:
        raise InvalidInput("vote body too large")
    status, content, ctype = await services.annotation.forward_vote(
        body, request.headers.get("authorization")
    )
    return Response(content, status_code=status, media_type=ctype)


@health.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz", summary="Embedder and vector-search reachable; cache state reported")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    ok, report = await request.app.state.readiness.run()
    try:
        await services.cache.check()
        report["cache"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a cache outage degrades, it never fails readiness
        report["cache"] = f"degraded (no cache): {type(exc).__name__}"
    return JSONResponse({"ready": ok, "checks": report}, status_code=200 if ok else 503)
