"""A circuit breaker per dependency and bounded retries with backoff (UNAVAILABLE only)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.errors import DependencyUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class Unavailable(Exception):
    """Raised by an adapter call for a retryable failure (connection refused, 503, UNAVAILABLE)."""


class DeadlineExceeded(Exception):
    """The dependency did not answer in time: counts against the breaker, never retried."""


class CircuitBreaker:
    """Closed -> open after ``failures`` in a row; half-open after ``reset_s`` lets one call try."""

    def __init__(
        self, name: str, failures: int = 5, reset_s: float = 5.0, clock=time.monotonic
    ) -> None:
        self.name = name
        self.failures = failures
        self.reset_s = reset_s
        self.clock = clock
        self._count = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self._opened_at >= self.reset_s else "open"

    def before(self) -> None:
        if self.state == "open":
            raise DependencyUnavailable(self.name, "circuit open after repeated failures")
        if self.state == "half-open":
            self._opened_at = self.clock()  # one trial call; others keep failing fast

    def success(self) -> None:
        self._count = 0
        self._opened_at = None

    def failure(self) -> None:
        self._count += 1
        if self._count >= self.failures and self._opened_at is None:
            log.warning("circuit opened", extra={"dependency": self.name})
        if self._count >= self.failures:
            self._opened_at = self.clock()


@dataclass(frozen=True)
class CallPolicy:
    """How an adapter calls its dependency: ``timeout_s`` for a whole call (every try),
    ``retries`` of a retryable failure within it, and when its breaker opens (after
    ``breaker_failures`` in a row) and lets one trial call through (``breaker_reset_s``)."""

    timeout_s: float = 2.0
    retries: int = 2
    breaker_failures: int = 5
    breaker_reset_s: float = 5.0

    def breaker(self, name: str) -> CircuitBreaker:
        return CircuitBreaker(name, self.breaker_failures, self.breaker_reset_s)


async def call(
    breaker: CircuitBreaker,
    attempt: Callable[[float], Awaitable[T]],
    *,
    deadline_s: float,
    retries: int = 2,
    backoff_s: float = 0.05,
) -> T:
    """Run ``attempt(timeout_s)`` under the breaker; retry only ``Unavailable`` within the deadline.

    Other exceptions (domain errors such as NotFound) pass through and count as successes,
    because the dependency answered.
    """
    breaker.before()
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    for n in range(retries + 1):
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            result = await attempt(left)
        except Unavailable as exc:
            last = exc
            breaker.failure()
            if breaker.state == "open":
                break
            delay = backoff_s * (2**n) * (0.5 + random.random())
            if time.monotonic() + delay >= end:
                break
            await asyncio.sleep(delay)
            continue
        except DeadlineExceeded as exc:
            breaker.failure()
            raise DependencyUnavailable(breaker.name, f"deadline exceeded: {exc}") from exc
        except Exception:
            breaker.success()
            raise
        breaker.success()
        return result
    raise DependencyUnavailable(breaker.name, str(last) if last else "deadline exceeded")
