"""Rate limits per principal (see domain/principals.py): in Redis, shared by every replica,
or in process when no Redis is configured."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as redis
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from gateway.adapters.resilience import CircuitBreaker
from gateway.errors import DependencyUnavailable, RateLimited

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def hit(self, principal: str) -> None:
        """Count one request; raise ``RateLimited`` when ``principal`` is over its limit."""
        ...

    async def close(self) -> None: ...


class LocalRateLimiter:
    """Token bucket per principal in this process: ``per_minute`` sustained, bursts up to the
    same number. Used alone without Redis, and as the fallback while Redis is failing."""

    def __init__(self, per_minute: int, clock=time.monotonic, max_keys: int = 10_000) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> None:
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

    async def hit(self, principal: str) -> None:
        self.take(principal)

    async def close(self) -> None:
        self._buckets.clear()


class RedisRateLimiter:
    """A sliding-window counter in Redis (the ``limits`` library), so N replicas allow
    ``per_minute`` per principal in total, not N times it.

    When Redis fails, the check falls back to this replica's local bucket (logged, and
    counted by ``on_fallback``) rather than failing open: an outage loosens the limit to
    ``per_minute`` per replica instead of removing it, and never turns a request into a 500.
    A breaker skips Redis for a while after repeated failures, so requests do not each pay
    the socket timeout."""

    def __init__(
        self,
        url: str,
        per_minute: int,
        *,
        prefix: str = "fashionrec:gw:ratelimit",
        timeout_s: float = 0.25,
        on_fallback: Callable[[], None] = lambda: None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.per_minute = per_minute
        self.pool = redis.ConnectionPool.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, max_connections=64
        )
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            key_prefix=prefix,
            wrap_exceptions=True,
            connection_pool=self.pool,
        )
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.item = RateLimitItemPerMinute(max(per_minute, 1))
        self.fallback = LocalRateLimiter(per_minute)
        self.on_fallback = on_fallback
        self.breaker = breaker or CircuitBreaker("redis rate limit", failures=3, reset_s=2.0)

    async def hit(self, principal: str) -> None:
        if self.per_minute <= 0:
            return
        try:
            self.breaker.before()
            allowed = await self.strategy.hit(self.item, principal)
            if not allowed:
                stats = await self.strategy.get_window_stats(self.item, principal)
        except DependencyUnavailable:
            self._fall_back(None)
        except (StorageError, RedisError, OSError) as exc:
            self.breaker.failure()
            self._fall_back(exc)
        else:
            self.breaker.success()
            if not allowed:
                wait = math.ceil(stats.reset_time - time.time())
                raise RateLimited("rate limit exceeded", retry_after_s=max(1, wait))
            return
        self.fallback.take(principal)

    def _fall_back(self, exc: Exception | None) -> None:
        self.on_fallback()
        if exc is not None:
            log.warning("redis rate limit failed; using this replica's local bucket: %s", exc)

    async def close(self) -> None:
        await self.pool.disconnect()
