"""The embedder through TF Serving's REST API (works with real TF Serving or our server)."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Sequence

import httpx

from fashionrec_common.grpc_auth import ClientTls
from gateway.adapters.resilience import CallPolicy, DeadlineExceeded, Unavailable, call
from gateway.errors import DependencyUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)
DEFAULT_POLICY = CallPolicy(timeout_s=10.0)
VERSION_TTL_S = 1.0  # how long a looked-up model version is trusted (bounds staleness on reload)


class VersionCache:
    """The served version of each model, trusted for ``ttl_s`` (bounds staleness on reload).

    Past half the TTL a version is still answered but ``due`` says to look it up again, so
    under steady load the lookup runs beside requests instead of in front of one."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._versions: dict[str, tuple[float, str]] = {}

    def get(self, model: str) -> str | None:
        cached = self._versions.get(model)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        return None

    def due(self, model: str) -> bool:
        cached = self._versions.get(model)
        return cached is not None and time.monotonic() - cached[0] >= self.ttl_s / 2

    def put(self, model: str, version: str) -> None:
        self._versions[model] = (time.monotonic(), version)

    def forget(self, model: str) -> None:
        self._versions.pop(model, None)


class TfServingClient:
    """What both TF Serving clients share: the call policy (a deadline per call, retries of
    UNAVAILABLE, a circuit breaker) and the served version, trusted for ``version_ttl_s``
    and forgotten when a call fails (a reload or an outage)."""

    def __init__(self, policy: CallPolicy, version_ttl_s: float) -> None:
        self.timeout_s = policy.timeout_s
        self.retries = policy.retries
        self.breaker = policy.breaker("embedder")
        self.versions = VersionCache(version_ttl_s)
        self._refreshing: dict[str, asyncio.Future[None]] = {}  # held: tasks are weak refs

    async def _available_versions(self, model: str) -> list[int]:
        raise NotImplementedError

    async def _predict(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        raise NotImplementedError

    async def model_version(self, model: str) -> str:
        cached = self.versions.get(model)
        if cached:
            if self.versions.due(model) and model not in self._refreshing:
                task = asyncio.ensure_future(self._refresh(model))
                self._refreshing[model] = task
                task.add_done_callback(lambda _: self._refreshing.pop(model, None))
            return cached
        return await self._look_up_version(model)

    async def _refresh(self, model: str) -> None:
        """In the background: a failure leaves the cached version to expire at its TTL."""
        try:
            await self._look_up_version(model)
        except Exception as exc:  # noqa: BLE001 - the next request that needs it will see it
            log.debug("background version lookup of %s failed: %s", model, exc)

    async def _stop_refreshes(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def _look_up_version(self, model: str) -> str:
        versions = await self._available_versions(model)
        if not versions:
            raise DependencyUnavailable("embedder", f"model {model!r} has no available version")
        version = str(max(versions))
        self.versions.put(model, version)
        return version

    async def embed(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        try:
            return await self._predict(model, images)
        except (DependencyUnavailable, NotFound):
            self.versions.forget(model)  # ask for the version again on the next search
            raise

    async def check(self, model: str) -> None:
        self.versions.forget(model)
        await self.model_version(model)


class EmbedderClient(TfServingClient):
    """TF Serving's REST API through a pooled httpx client (``grpc://`` URLs get
    ``EmbedderGrpcClient`` instead)."""

    def __init__(
        self,
        base_url: str,
        *,
        policy: CallPolicy = DEFAULT_POLICY,
        transport: httpx.AsyncBaseTransport | None = None,
        version_ttl_s: float = VERSION_TTL_S,
        tls: ClientTls | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            timeout=policy.timeout_s,
            transport=transport,
            verify=tls.ssl_context() if tls else True,
        )
        super().__init__(policy, version_ttl_s)

    async def close(self) -> None:
        await self._stop_refreshes()
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

    async def _available_versions(self, model: str) -> list[int]:
        reply = await self._request("GET", f"/v1/models/{model}", min(self.timeout_s, 2.0))
        statuses = reply.json().get("model_version_status", [])
        return [int(s["version"]) for s in statuses if s.get("state") == "AVAILABLE"]

    async def _predict(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        body = {
            "signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(img).decode()} for img in images],
        }
        path = f"/v1/models/{model}:predict"
        reply = await self._request("POST", path, self.timeout_s, json=body)
        predictions = reply.json().get("predictions")
        if not isinstance(predictions, list) or len(predictions) != len(images):
            raise DependencyUnavailable("embedder", "malformed predict response")
        # Single-output signatures return a bare list per instance; multi-output ones a dict.
        return [p["embedding"] if isinstance(p, dict) else p for p in predictions]


def _error(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error", reply.text))[:300]
    except ValueError:
        return reply.text[:300]
