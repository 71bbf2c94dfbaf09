"""Domain errors. The REST and gRPC layers each map them to a status in one place."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error reported to clients; ``code`` is a stable machine-readable name."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(GatewayError):
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class UnsupportedMedia(InvalidInput):
    code = "unsupported_media"


class NotFound(GatewayError):
    code = "not_found"


class Unauthorized(GatewayError):
    code = "unauthorized"


class RateLimited(GatewayError):
    code = "rate_limited"


class DependencyUnavailable(GatewayError):
    """A dependency (embedder, vector-search, annotation) did not answer or is circuit-broken."""

    code = "dependency_unavailable"

    def __init__(self, dependency: str, message: str) -> None:
        super().__init__(f"{dependency} unavailable: {message}", dependency=dependency)
        self.dependency = dependency
