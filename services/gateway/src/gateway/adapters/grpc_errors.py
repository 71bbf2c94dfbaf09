"""One mapping from a dependency's gRPC status to the gateway's errors (every gRPC adapter)."""

from __future__ import annotations

from typing import NoReturn

import grpc

from gateway.adapters.resilience import DeadlineExceeded, Unavailable
from gateway.errors import DependencyUnavailable, InvalidInput, NotFound

# The client's own mistake: TF Serving answers these with HTTP 400 on its REST API.
INVALID_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


def raise_for_status(
    exc: grpc.aio.AioRpcError,
    dependency: str,
    *,
    invalid: frozenset[grpc.StatusCode] = INVALID_CODES,
    not_found_prefix: str = "",
    invalid_prefix: str = "",
) -> NoReturn:
    """UNAVAILABLE is retried by ``resilience.call``, a deadline opens the breaker, NOT_FOUND
    and the ``invalid`` codes are the caller's (404 and 400), anything else is a 503."""
    code, detail = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        raise Unavailable(detail) from exc
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise DeadlineExceeded(detail) from exc
    if code == grpc.StatusCode.NOT_FOUND:
        raise NotFound(not_found_prefix + detail) from exc
    if code in invalid:
        raise InvalidInput(invalid_prefix + detail) from exc
    raise DependencyUnavailable(dependency, f"{code.name}: {detail}") from exc
