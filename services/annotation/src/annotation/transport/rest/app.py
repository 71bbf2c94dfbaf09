"""Application factory: wires settings -> repository -> domain service -> routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from annotation import errors
from annotation.adapters.db.migrate import upgrade
from annotation.adapters.db.repository import SqlVoteRepository
from annotation.adapters.db.session import make_engine
from annotation.config import AnnotationSettings
from annotation.domain.votes import VoteService
from annotation.metrics import AnnotationMetrics
from annotation.transport.rest import pages, routes
from fashionrec_common import api_errors
from fashionrec_common.api_docs import offline_docs_app
from fashionrec_common.health import Readiness

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parents[2] / "web"  # annotation/web

STATUS: dict[type[errors.AnnotationError], int] = {
    errors.ForgedToken: 400,
    errors.InvalidChoice: 400,
    errors.BadAnnotator: 401,
    errors.AdminDenied: 403,
    errors.ReplayedToken: 409,
    errors.DoubleVote: 409,
    errors.AnnotatorExists: 409,
}


class ConfigError(RuntimeError):
    """Settings that make the service unusable; raised at startup, not at the first vote."""


def create_app(settings: AnnotationSettings) -> FastAPI:
    if settings.vote_token_secret is None or not settings.vote_token_secret.get_secret_value():
        raise ConfigError("ANNOTATION_VOTE_TOKEN_SECRET must be set (same value as the gateway's)")
    engine = make_engine(settings.database_url)
    if settings.migrate_on_start:
        upgrade(engine)
    repo = SqlVoteRepository(engine)
    service = VoteService(
        repo=repo,
        token_secret=settings.vote_token_secret.get_secret_value(),
        token_max_age_s=settings.vote_token_max_age_s,
    )
    metrics = AnnotationMetrics()
    readiness = Readiness()
    readiness.add("database", lambda: asyncio.to_thread(repo.ping))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    # /docs and /redoc assets come from the app itself (fastapi-offline), never from a CDN.
    app = offline_docs_app(
        title="fashionrec annotation",
        version="0.1.0",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # the validator badge calls out
    )
    app.state.settings = settings
    app.state.repo = repo
    app.state.service = service
    app.state.readiness = readiness
    app.state.votes_total = metrics.votes_total

    _install_error_handlers(app)
    _install_routes(app, metrics)
    log.info("annotation app ready", extra={"database": engine.url.render_as_string()})
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Domain errors and a down database answer in the shared error shape and count failed votes."""

    @app.exception_handler(errors.AnnotationError)
    async def _domain_error(request: Request, exc: errors.AnnotationError) -> JSONResponse:
        status = STATUS.get(type(exc), 400)
        if request.url.path == "/v1/votes":
            app.state.votes_total.labels(exc.code).inc()
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return api_errors.error_response(status, exc.code, str(exc), headers)

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> JSONResponse:
        # The database is restarting or unreachable: 503 tells the gateway and the UI to retry.
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        if request.url.path == "/v1/votes":
            app.state.votes_total.labels("database_unavailable").inc()
        return api_errors.error_response(
            503, "database_unavailable", "the vote database is unavailable", {"Retry-After": "1"}
        )

    api_errors.install(app)  # validation, unknown routes, the unexpected: the same shape
    api_errors.document(app)


def _install_routes(app: FastAPI, metrics: AnnotationMetrics) -> None:
    """The API and page routers, the static assets and /metrics, in the order they match."""
    app.include_router(routes.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    # A route, not a mount of metrics_asgi_app: a mount answers /metrics with a redirect.
    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)
