"""Forwards votes to the annotation service unchanged (body and Authorization header)."""

from __future__ import annotations

import httpx

from gateway.adapters.resilience import CircuitBreaker, DeadlineExceeded, Unavailable, call


class AnnotationClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
            transport=transport,
        )
        self.timeout_s = timeout_s
        self.breaker = CircuitBreaker("annotation")

    async def close(self) -> None:
        await self.http.aclose()

    async def forward_vote(self, body: bytes, authorization: str | None) -> tuple[int, bytes, str]:
        """Returns (status, body, content type) exactly as the annotation service answered."""
        headers = {"content-type": "application/json"}
        if authorization:
            headers["authorization"] = authorization

        async def attempt(left: float) -> httpx.Response:
            try:
                return await self.http.post(
                    "/v1/votes", content=body, headers=headers, timeout=left
                )
            except httpx.TimeoutException as exc:
                raise DeadlineExceeded(str(exc) or "timeout") from exc
            except httpx.TransportError as exc:
                raise Unavailable(str(exc) or type(exc).__name__) from exc

        # Votes are not idempotent from our side: no retries (the service rejects replays anyway).
        reply = await call(self.breaker, attempt, deadline_s=self.timeout_s, retries=0)
        return (
            reply.status_code,
            reply.content,
            reply.headers.get("content-type", "application/json"),
        )
