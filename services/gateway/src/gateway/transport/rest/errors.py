"""The one place where domain errors become HTTP statuses and JSON error bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fashionrec_common import api_errors
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
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.details.get("retry_after_s", 1))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "ApiKey"
    return api_errors.error_response(status, exc.code, exc.message, headers, **exc.details)


def install(app: FastAPI) -> None:
    def count(request: Request, code: str) -> None:
        services = getattr(request.app.state, "services", None)
        if services is not None:
            services.metrics.errors.labels(code).inc()

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        count(request, exc.code)
        if isinstance(exc, DependencyUnavailable):
            log.warning("dependency unavailable: %s", exc.message)
        return error_response(exc)

    app.add_exception_handler(GatewayError, handle)
    api_errors.install(app, on_error=count)  # validation, unknown routes, the unexpected
    api_errors.document(app)
