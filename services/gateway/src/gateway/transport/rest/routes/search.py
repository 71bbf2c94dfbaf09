"""POST /v1/search (upload or base64) and GET /v1/items/{id}/similar."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect

from gateway.adapters.image_url import fetch_image
from gateway.domain.timing import Timings
from gateway.domain.types import (
    MAX_FILTER_KEYS,
    MAX_FILTER_VALUES,
    MAX_FILTERS_CHARS,
    RecommendQuery,
    normalise_filters,
    parse_filters,
)
from gateway.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia
from gateway.transport.rest.deps import (
    ServicesDep,
    catalogue_or_auto,
    rate_limit,
    search_reply,
    started,
)
from gateway.transport.rest.schemas import ErrorOut, SearchJson, SearchOut
from gateway.wiring import Services

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(rate_limit)])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 404, 413, 415, 429, 503)
}
FILTERS_DOC = (
    'JSON object of key -> value or list of values, e.g. {"class":"heels"}; at most '
    f"{MAX_FILTER_KEYS} keys, {MAX_FILTER_VALUES} values per key, {MAX_FILTERS_CHARS} "
    "characters, nothing nested"
)
SEARCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "catalogue": {"type": "string", "enum": ["shoes", "handbags", "auto"]},
                        "model": {"type": "string", "example": "infogan"},
                        "k": {"type": "integer", "minimum": 1, "default": 10},
                        "filters": {
                            "type": "string",
                            "maxLength": MAX_FILTERS_CHARS,
                            "description": FILTERS_DOC,
                        },
                    },
                }
            },
            "application/json": {"schema": SearchJson.model_json_schema()},
        },
    }
}


async def _fetch(url: str, services: Services) -> bytes:
    settings = services.settings
    return await fetch_image(
        url,
        allow=settings.fetch_allow_hosts,
        max_bytes=settings.max_upload_bytes,
        deadline_s=settings.image_url_deadline_s,
    )


async def _from_form(form: FormData, services: Services) -> tuple[bytes, dict[str, Any]]:
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("multipart field 'image' (a file) is required")
    data = await upload.read(services.settings.max_upload_bytes + 1)
    try:
        k = int(str(form.get("k") or 10))
    except ValueError as exc:
        raise InvalidInput(f"bad k: {exc}") from exc
    filters = parse_filters(str(form.get("filters") or ""))
    fields = {"catalogue": form.get("catalogue"), "model": form.get("model"), "k": k}
    return data, fields | {"filters": filters}


async def _parse(request: Request, services: Services) -> tuple[bytes, dict[str, Any]]:
    try:
        return await _parse_body(request, services)
    except ClientDisconnect:  # e.g. a load generator stopping mid-request: not a server error
        raise InvalidInput("the client went away before sending the whole body") from None


async def _parse_body(request: Request, services: Services) -> tuple[bytes, dict[str, Any]]:
    if request.query_params:  # silently ignoring `?k=5` would answer another question
        raise InvalidInput(
            f"query parameters {sorted(request.query_params)} are not read here: send k, "
            "catalogue, model and filters as multipart fields or in the JSON body"
        )
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10)
        except PayloadTooLarge:
            raise
        except Exception as exc:  # noqa: BLE001 - any multipart parse failure is the client's
            raise InvalidInput(f"malformed multipart body: {exc}") from exc
        try:
            return await _from_form(form, services)
        finally:
            await form.close()  # spooled upload files are temp files
    if ctype.startswith("application/json"):
        try:
            doc = SearchJson.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidInput(f"invalid JSON body: {exc.errors(include_url=False)}") from exc
        if doc.image_b64:
            try:
                data = base64.b64decode(doc.image_b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidInput("image_b64 is not valid base64") from exc
        elif doc.image_url:
            data = await _fetch(doc.image_url, services)
        else:
            raise InvalidInput("one of image_b64 or image_url is required")
        return data, doc.model_dump(include={"catalogue", "model", "k", "filters"})
    raise UnsupportedMedia("send multipart/form-data (field 'image') or application/json")


@router.post(
    "/search",
    response_model=SearchOut,
    responses=ERRORS,
    openapi_extra=SEARCH_BODY,
    summary="Find catalogue items that look like an image",
)
async def search(request: Request, services: ServicesDep) -> Response:
    start = started(request)
    timings = Timings()
    with timings.stage("parse"):
        data, fields = await _parse(request, services)
    query = RecommendQuery(
        catalogue_or_auto(fields.get("catalogue")),
        fields.get("model") or None,
        int(fields["k"]),
        normalise_filters(fields.get("filters")),
    )
    result = await services.recommender.search_image(data, query, timings)
    return search_reply(request, services, "search", result, timings, start)


async def similar_query(
    catalogue: Annotated[str | None, Query(description="shoes, handbags; empty = look up")] = None,
    model: Annotated[str | None, Query(examples=["infogan"])] = None,
    k: Annotated[int, Query(ge=1)] = 10,
    filters: Annotated[str | None, Query(description=FILTERS_DOC)] = None,
) -> RecommendQuery:
    """The query string of GET /v1/items/{id}/similar (async: no worker thread for it)."""
    return RecommendQuery(catalogue_or_auto(catalogue), model, k, parse_filters(filters))


SimilarQuery = Annotated[RecommendQuery, Depends(similar_query)]


@router.get(
    "/items/{item_id}/similar",
    response_model=SearchOut,
    responses=ERRORS,
    summary="More like this: neighbours of a stored item (no re-embedding)",
)
async def similar(
    item_id: str, query: SimilarQuery, request: Request, services: ServicesDep
) -> Response:
    start = started(request)
    timings = Timings()
    result = await services.recommender.similar(item_id, query, timings)
    return search_reply(request, services, "similar", result, timings, start)
