"""The embedder through TF Serving's REST API (works with real TF Serving or our server)."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence

import httpx

from gateway.adapters.resilience import CallPolicy, DeadlineExceeded, Unavailable, call
from gateway.errors import DependencyUnavailable, InvalidInput, NotFound

DEFAULT_POLICY = CallPolicy(timeout_s=10.0)
VERSION_TTL_S = 1.0  # how long a looked-up model version is trusted (bounds staleness on reload)


class EmbedderClient:
    """Pooled httpx client; every call has a deadline, retries and a circuit breaker."""

    def __init__(
        self,
        base_url: str,
        *,
        policy: CallPolicy = DEFAULT_POLICY,
        transport: httpx.AsyncBaseTransport | None = None,
        version_ttl_s: float = VERSION_TTL_S,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            timeout=policy.timeout_s,
            transport=transport,
        )
        self.timeout_s = policy.timeout_s
        self.retries = policy.retries
        self.breaker = policy.breaker("embedder")
        self.version_ttl_s = version_ttl_s
        self._versions: dict[str, tuple[float, str]] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, deadline_s: float, **kw) -> httpx.Response:
        async def attempt(left: float) -> httpx.Response:
            try:
                reply = await self.http.request(method, path, timeout=left, **kw)
            except httpx.TimeoutException as exc:
                raise DeadlineExceeded(str(exc) or type(exc).__name__) from exc
            except httpx.TransportError as exc:
                raise Unavailable(str(exc) or type(exc).__name__) from exc
            if reply.status_code == 503:
                raise Unavailable(f"HTTP 503: {reply.text[:200]}")
            return reply

        reply = await call(self.breaker, attempt, deadline_s=deadline_s, retries=self.retries)
        if reply.status_code == 404:
            raise NotFound(f"embedder: {_error(reply)}")
        if reply.status_code == 400:
            raise InvalidInput(f"embedder rejected the input: {_error(reply)}")
        if reply.status_code >= 400:
            raise DependencyUnavailable("embedder", f"HTTP {reply.status_code}: {_error(reply)}")
        return reply

    async def model_version(self, model: str) -> str:
        now = time.monotonic()
        cached = self._versions.get(model)
        if cached and now - cached[0] < self.version_ttl_s:
            return cached[1]
        reply = await self._request("GET", f"/v1/models/{model}", min(self.timeout_s, 2.0))
        statuses = reply.json().get("model_version_status", [])
        versions = [int(s["version"]) for s in statuses if s.get("state") == "AVAILABLE"]
        if not versions:
            raise DependencyUnavailable("embedder", f"model {model!r} has no available version")
        version = str(max(versions))
        self._versions[model] = (now, version)
        return version

    async def embed(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        body = {
            "signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(img).decode()} for img in images],
        }
        try:
            reply = await self._request(
                "POST", f"/v1/models/{model}:predict", self.timeout_s, json=body
            )
        except (DependencyUnavailable, NotFound):
            self._versions.pop(model, None)  # a reload or an outage: ask for the version again
            raise
        predictions = reply.json().get("predictions")
        if not isinstance(predictions, list) or len(predictions) != len(images):
            raise DependencyUnavailable("embedder", "malformed predict response")
        # Single-output signatures return a bare list per instance; multi-output ones a dict.
        return [p["embedding"] if isinstance(p, dict) else p for p in predictions]

    async def check(self, model: str) -> None:
        self._versions.pop(model, None)
        await self.model_version(model)


def _error(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error", reply.text))[:300]
    except ValueError:
        return reply.text[:300]
