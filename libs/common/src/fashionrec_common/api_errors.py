"""One error shape for every HTTP service: ``{"error": {"code": ..., "message": ...}}``.

Each service maps its own domain errors (in its ``errors`` module); this module maps what the
framework raises on its own: request validation (FastAPI's ``{"detail": [...]}`` 422 becomes
400 ``invalid_input``), unknown routes and methods, and anything unexpected (a JSON 500, never
text/plain). :func:`document` writes the same shape, and the limits the server enforces,
into the OpenAPI schema, so a client generated from it expects what it gets.

The embedder's REST API keeps TensorFlow Serving's own ``{"error": "..."}``: that API is
TF Serving's contract, and production runs the real TF Serving behind it.
FastAPI is imported lazily: only web services call this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

CODES: Mapping[int, str] = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "for people"},
            },
            "additionalProperties": True,
        }
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **details: Any,
) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        error_body(code, message, **details), status_code=status, headers=dict(headers or {})
    )


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """``query.k: Input should be less than or equal to 100`` for people, fields for code."""
    fields = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
        for e in errors[:20]
    ]
    text = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    return text[:1000], fields


def install(app: Any, on_error: Callable[[Any, str], None] | None = None) -> None:
    """Framework errors in the one shape; ``on_error(request, code)`` counts them."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    def counted(request: Any, code: str) -> None:
        if on_error is not None:
            on_error(request, code)

    async def invalid(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        message, fields = validation_message(list(exc.errors()))
        counted(request, "invalid_input")
        return error_response(400, "invalid_input", message, fields=fields)

    async def http(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        code = CODES.get(exc.status_code, "http_error")
        counted(request, code)
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, detail, exc.headers)

    async def unexpected(request: Any, exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        counted(request, "internal_error")
        return error_response(500, "internal_error", "internal error")

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, unexpected)


def document(app: Any) -> None:
    """Every operation's error responses use the Error schema (400 instead of FastAPI's 422)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        content = {"application/json": {"schema": ERROR_REF}}
        for item in schema.get("paths", {}).values():
            for op in item.values():
                responses = op.setdefault("responses", {})
                responses.pop("422", None)
                responses.setdefault("400", {"description": "invalid input"})
                for status, response in responses.items():
                    if status[0] in "45":
                        response.setdefault("description", CODES.get(int(status), "error"))
                        response["content"] = content
                responses.setdefault("default", {"description": "error", "content": content})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
