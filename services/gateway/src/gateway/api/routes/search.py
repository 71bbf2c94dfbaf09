"""POST /v1/search (upload or base64) and GET /v1/items/{id}/similar."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect

from gateway.api.deps import (
    ServicesDep,
    rate_limit,
    search_reply,
    started,
)
from gateway.api.schemas import ErrorOut, SearchJson, SearchOut
from gateway.domain.timing import Timings
from gateway.domain.types import normalise_filters
from gateway.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia
from gateway.wiring import Services

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(rate_limit)])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 404, 413, 415, 429, 503)
}
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
                        "filters": {"type": "string", "description": "JSON object"},
                    },
                }
            },
            "application/json": {"schema": SearchJson.model_json_schema()},
        },
    }
}


def _catalogue(value: object) -> str | None:
    if value in (None, "", "auto", "automatic"):
        return None
    return str(value)


async def _fetch(url: str, services: Services) -> bytes:
    """Only hosts on the allow-list, https/http, no redirects, size-capped."""
    allowed = services.settings.fetch_allow_hosts
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"bad image_url: {exc}") from exc
    if not allowed or parsed.host not in allowed or parsed.scheme not in ("http", "https"):
        raise InvalidInput("image_url fetching is disabled for this host; upload the image instead")
    limit = services.settings.max_upload_bytes
    async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as http:
        try:
            async with http.stream("GET", url) as reply:
                if reply.status_code != 200:
                    raise InvalidInput(f"image_url answered {reply.status_code}")
                data = b""
                async for chunk in reply.aiter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise PayloadTooLarge(f"image larger than {limit} bytes")
                return data
        except httpx.HTTPError as exc:
            raise InvalidInput(f"could not fetch image_url: {exc}") from exc


async def _from_form(form: FormData, services: Services) -> tuple[bytes, dict[str, Any]]:
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("multipart field 'image' (a file) is required")
    data = await upload.read(services.settings.max_upload_bytes + 1)
    try:
        raw_filters = json.loads(str(form["filters"])) if form.get("filters") else None
        k = int(str(form.get("k") or 10))
    except ValueError as exc:
        raise InvalidInput(f"bad k or filters: {exc}") from exc
    fields = {"catalogue": form.get("catalogue"), "model": form.get("model"), "k": k}
    return data, fields | {"filters": raw_filters}


async def _parse(request: Request, services: Services) -> tuple[bytes, dict[str, Any]]:
    try:
        return await _parse_body(request, services)
    except ClientDisconnect:  # e.g. a load generator stopping mid-request: not a server error
        raise InvalidInput("the client went away before sending the whole body") from None


async def _parse_body(request: Request, services: Services) -> tuple[bytes, dict[str, Any]]:
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
    result = await services.recommender.search_image(
        data,
        catalogue=_catalogue(fields.get("catalogue")),
        model=fields.get("model") or None,
        k=int(fields["k"]),
        filters=normalise_filters(fields.get("filters")),
        timings=timings,
    )
    return search_reply(request, services, "search", result, timings, start)


@router.get(
    "/items/{item_id}/similar",
    response_model=SearchOut,
    responses=ERRORS,
    summary="More like this: neighbours of a stored item (no re-embedding)",
)
async def similar(
    item_id: str,
    request: Request,
    services: ServicesDep,
    catalogue: Annotated[str | None, Query(description="shoes, handbags; empty = look up")] = None,
    model: Annotated[str | None, Query(examples=["infogan"])] = None,
    k: Annotated[int, Query(ge=1)] = 10,
    filters: Annotated[str | None, Query(description='JSON object, e.g. {"class":"heels"}')] = None,
) -> Response:
    start = started(request)
    timings = Timings()
    try:
        raw = json.loads(filters) if filters else None
    except ValueError as exc:
        raise InvalidInput("filters must be a JSON object") from exc
    result = await services.recommender.similar(
        item_id,
        catalogue=_catalogue(catalogue),
        model=model,
        k=k,
        filters=normalise_filters(raw),
        timings=timings,
    )
    return search_reply(request, services, "similar", result, timings, start)
