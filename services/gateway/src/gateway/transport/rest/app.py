"""create_app: the REST gateway. Clients are opened in the lifespan unless injected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST

from fashionrec_common.api_docs import offline_docs_app
from fashionrec_common.health import Readiness
from gateway.config import GatewaySettings
from gateway.metrics import exposition
from gateway.transport.rest import errors
from gateway.transport.rest.guards import BodyLimit, StampStart
from gateway.transport.rest.limits import document_limits
from gateway.transport.rest.routes import items, meta, search
from gateway.wiring import Services, build_services

DESCRIPTION = """Visual-similarity recommendations for shoes and handbags.

Search by an uploaded image or by a stored item, browse catalogues, ingest items (API key),
and build blinded comparison rows for human votes. Every answer names the model version
and index generation that produced it."""


def create_app(settings: GatewaySettings, services: Services | None = None) -> FastAPI:
    """``services`` injected (tests, __main__ sharing them with gRPC) are not closed here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        svc = services or build_services(settings)
        app.state.services = svc
        readiness = Readiness(timeout_s=2.0)
        readiness.add("embedder", lambda: svc.embedder.check(settings.default_model))
        readiness.add("vector-search", svc.store.check)
        app.state.readiness = readiness
        try:
            yield
        finally:
            if owned:
                await svc.close()

    # /docs and /redoc load their JS and CSS from this app, not a CDN: closed networks too.
    app = offline_docs_app(
        title="fashionrec gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # the validator badge calls out
    )
    errors.install(app)
    document_limits(app, settings)
    app.include_router(search.router)
    app.include_router(items.router)
    app.include_router(meta.router)
    app.include_router(meta.health)
    upload = settings.max_upload_bytes
    app.add_middleware(
        BodyLimit, limit=upload * 4 // 3 + 64 * 1024, batch_limit=upload * 4 // 3 * 64
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
            expose_headers=["Server-Timing"],
        )
    app.add_middleware(StampStart)  # added last = outermost

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """A route, not a mount: no /metrics -> /metrics/ redirect; reads this app's registry
        (or every worker's, see gateway.metrics.exposition)."""
        registry = request.app.state.services.metrics.registry
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    return app
