"""Result cache: Redis when REDIS_URL is set, else an in-process LRU. Never raises."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.adapters.resilience import CircuitBreaker
from gateway.errors import DependencyUnavailable

log = logging.getLogger(__name__)
Observer = Callable[[str], None]  # called with "hit", "miss" or "error"


def _ignore(_: str) -> None:
    return None


class LruCache:
    """Bounded, TTL-aware; for one process (dev, tests, or Redis not configured)."""

    def __init__(self, size: int = 2048, observe: Observer = _ignore, clock=time.monotonic) -> None:
        self.size = size
        self.observe = observe
        self.clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None or entry[0] < self.clock():
            self._data.pop(key, None)
            self.observe("miss")
            return None
        self._data.move_to_end(key)
        self.observe("hit")
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._data[key] = (self.clock() + ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Short timeouts and a breaker: a slow or dead Redis costs a request almost nothing."""

    def __init__(
        self,
        url: str,
        prefix: str = "fashionrec:gw:",
        observe: Observer = _ignore,
        timeout_s: float = 0.25,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            max_connections=64,
            retry_on_timeout=False,
        )
        self.prefix = prefix
        self.observe = observe
        self.breaker = breaker or CircuitBreaker("redis", failures=3, reset_s=2.0)

    def _usable(self) -> bool:
        try:
            self.breaker.before()
        except DependencyUnavailable:
            return False
        return True

    def _failed(self, op: str, exc: Exception) -> None:
        self.breaker.failure()
        self.observe("error")
        log.warning("redis %s failed; continuing without cache: %s", op, exc)

    async def get(self, key: str) -> bytes | None:
        if not self._usable():
            self.observe("error")
            return None
        try:
            value = await self.client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return None
        self.breaker.success()
        self.observe("hit" if value is not None else "miss")
        return value

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        if not self._usable():
            return
        try:
            await self.client.set(self.prefix + key, value, ex=ttl_s)
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return
        self.breaker.success()

    async def check(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
