"""The one place where domain errors become HTTP statuses and JSON error bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.errors import (
    DependencyUnavailable,
    GatewayError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UnsupportedMedia,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[GatewayError], int]] = [
    (PayloadTooLarge, 413),
    (UnsupportedMedia, 415),
    (InvalidInput, 400),
    (NotFound, 404),
    (Unauthorized, 401),
    (RateLimited, 429),
    (DependencyUnavailable, 503),
]


def status_of(exc: GatewayError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


def error_response(exc: GatewayError) -> JSONResponse:
    status = status_of(exc)
    body = {"error": {"code": exc.code, "message": exc.message, **exc.details}}
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.details.get("retry_after_s", 1))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "ApiKey"
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        metrics = getattr(request.app.state, "services", None)
        if metrics is not None:
            metrics.metrics.errors.labels(exc.code).inc()
        if isinstance(exc, DependencyUnavailable):
            log.warning("dependency unavailable: %s", exc.message)
        return error_response(exc)

    app.add_exception_handler(GatewayError, handle)
