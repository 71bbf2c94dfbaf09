"""Catalogue writes (API key) and browsing: POST /v1/items, POST /v1/items:batch, DELETE, GET."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import ValidationError

from gateway.domain.images import check_image_async
from gateway.domain.types import index_name, normalise_filters
from gateway.errors import GatewayError, InvalidInput, NotFound
from gateway.transport.rest.deps import (
    ServicesDep,
    WriteKey,
    catalogue_or_auto,
    image_base,
    item_json,
    rate_limit,
)
from gateway.transport.rest.routes.search import ERRORS
from gateway.transport.rest.schemas import ItemIn, ItemsPage, JobOut
from gateway.wiring import Services

router = APIRouter(prefix="/v1", tags=["items"], dependencies=[Depends(rate_limit)])
BATCH = 16
MAX_LINES = 10_000
NDJSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one ItemIn JSON object per line"},
                "example": '{"id":"1","catalogue":"shoes","image_b64":"..."}\n',
            }
        },
    }
}


async def _image(item: ItemIn, services: Services) -> bytes:
    try:
        data = base64.b64decode(item.image_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("image_b64 is not valid base64") from exc
    return await check_image_async(data, services.recommender.image_limits)


def _meta(item: ItemIn) -> dict[str, str]:
    return {**item.metadata, "category": item.catalogue}


@router.post(
    "/items",
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS | {401: {"model": dict}},
    summary="Embed one item with each model and upsert it (API key)",
)
async def create_item(item: ItemIn, services: ServicesDep, _: WriteKey) -> dict[str, Any]:
    image = await _image(item, services)
    models = item.models or [services.settings.default_model]
    await services.recommender.ingest(item.catalogue, models, [(item.id, image, _meta(item))])
    return {"id": item.id, "indexes": [index_name(item.catalogue, m) for m in models]}


@router.post(
    "/items:batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses=ERRORS | {401: {"model": dict}},
    openapi_extra=NDJSON_BODY,
    summary="NDJSON ingest in the background; poll GET /v1/jobs/{job_id} for progress (API key)",
)
async def batch(request: Request, services: ServicesDep, _: WriteKey) -> JobOut:
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[str, bytes, dict]]] = defaultdict(list)
    rejected: list[dict[str, str]] = []
    lines = (await request.body()).splitlines()
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} lines per batch")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = ItemIn.model_validate_json(line)
            image = await _image(item, services)
            services.recommender.validate_request(item.catalogue, None, 1)
        except ValidationError as exc:
            rejected.append({"id": f"line {n}", "error": str(exc.errors(include_url=False))[:300]})
            continue
        except GatewayError as exc:
            rejected.append({"id": f"line {n}", "error": exc.message})
            continue
        models = tuple(item.models or [services.settings.default_model])
        groups[(item.catalogue, models)].append((item.id, image, _meta(item)))
    if not groups and not rejected:
        raise InvalidInput("empty batch")
    batches, runners = [], {}
    for (catalogue, models), items in groups.items():
        for i in range(0, len(items), BATCH):
            chunk = items[i : i + BATCH]
            batches.append(chunk)
            runners[id(chunk)] = (catalogue, list(models))

    async def run(chunk: Any) -> int:
        catalogue, models = runners[id(chunk)]
        return await services.recommender.ingest(catalogue, models, chunk)

    return JobOut.of(await services.jobs.start(batches, run, rejected))


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERRORS, summary="Ingest progress")
async def job(job_id: str, services: ServicesDep) -> JobOut:
    found = await services.jobs.get(job_id)
    if found is None:
        raise NotFound(f"no job {job_id!r}")
    return JobOut.of(found)


@router.delete(
    "/items/{item_id}",
    responses=ERRORS | {401: {"model": dict}},
    summary="Remove an item from every model's index (API key)",
)
async def delete_item(
    item_id: str,
    services: ServicesDep,
    _: WriteKey,
    catalogue: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    removed = await services.recommender.delete(item_id, catalogue_or_auto(catalogue))
    return {"id": item_id, "deleted_from": removed}


@router.get("/items", response_model=ItemsPage, responses=ERRORS, summary="Browse a catalogue")
async def list_items(
    request: Request,
    services: ServicesDep,
    catalogue: Annotated[str, Query(examples=["shoes"])],
    model: Annotated[str | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    category_class: Annotated[str | None, Query(alias="class")] = None,
) -> dict[str, Any]:
    services.recommender.validate_request(catalogue, model, 1)
    filters = normalise_filters({"class": category_class} if category_class else None)
    index = index_name(catalogue, model or services.settings.default_model)
    items, total = await services.store.list_items(index, offset, limit, filters)
    base = image_base(request, services)
    return {
        "items": [item_json(base, i) for i in items],
        "total": total,
        "offset": offset,
        "limit": limit,
    }
