"""Input limits, API keys and the rate-limit principal of a request."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from fastapi import Request
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.domain.principals import known_key, principal
from gateway.errors import PayloadTooLarge, Unauthorized

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="write endpoints")


class StampStart:
    """Outermost: notes when a request arrived, for the gateway's own-overhead metric."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["t0"] = time.perf_counter()
        await self.app(scope, receive, send)


class BodyLimit:
    """Counts body bytes as they stream in; over the limit the request fails with 413 at once."""

    def __init__(self, app: ASGIApp, limit: int, batch_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.batch_limit = batch_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.batch_limit if scope["path"].endswith(":batch") else self.limit
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {"error": {"code": "payload_too_large", "message": f"body larger than {limit} bytes"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def check_api_key(presented: str | None, keys: Sequence[str]) -> str:
    """Constant-time comparison against every configured key."""
    if not presented:
        raise Unauthorized("this endpoint needs an X-API-Key header")
    if known_key(presented, keys) is None:
        raise Unauthorized("invalid API key")
    return presented


def client_key(request: Request, keys: Sequence[str]) -> str:
    """The rate-limit principal: a configured key's id, else the client address (a made-up
    key gets no bucket of its own)."""
    address = request.client.host if request.client else "unknown"
    return principal(request.headers.get("x-api-key"), keys, address)
