"""Input limits, API keys and per-key rate limiting."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Sequence

from fastapi import Request
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import PayloadTooLarge, RateLimited, Unauthorized

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
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(presented.encode(), key.encode())
    if not ok:
        raise Unauthorized("invalid API key")
    return presented


class RateLimiter:
    """Token bucket per key: ``per_minute`` sustained, bursts up to the same number."""

    def __init__(self, per_minute: int, clock=time.monotonic, max_keys: int = 10_000) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * self.per_minute / 60.0)
        if tokens < 1.0:
            wait = (1.0 - tokens) * 60.0 / self.per_minute
            raise RateLimited("rate limit exceeded", retry_after_s=max(1, round(wait)))
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._buckets.clear()  # bounded memory under a flood of distinct clients
        self._buckets[key] = (tokens - 1.0, now)


def client_key(request: Request) -> str:
    """The API key when given, else the client address."""
    key = request.headers.get("x-api-key")
    if key:
        return "key:" + key
    return "ip:" + (request.client.host if request.client else "unknown")
