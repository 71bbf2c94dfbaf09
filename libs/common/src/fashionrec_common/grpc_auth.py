"""Internal gRPC security: shared bearer tokens, optional (m)TLS, by configuration.

A server built with :func:`token_auth` answers UNAUTHENTICATED to any call whose
``authorization`` metadata is not ``Bearer <one of the tokens>``. Several tokens are
accepted at once so a token can be rotated without downtime. The standard health service
and server reflection stay open: kubelet's native gRPC probes and compose health checks
send no metadata, and neither reveals data. With no token configured the server is open
(local development) and says so in its log.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc
from pydantic import BaseModel, SecretStr

log = logging.getLogger(__name__)

AUTH_HEADER = "authorization"
# Full method prefixes that never need a token: probes and tooling.
OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

Metadata = tuple[tuple[str, str], ...]


def parse_tokens(value: object) -> object:
    """``"a, b"`` -> ``["a", "b"]`` for pydantic-settings (env values are comma-separated)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def bearer_metadata(token: str | SecretStr | None) -> Metadata:
    """Call metadata that carries ``token`` (empty when there is none)."""
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    return ((AUTH_HEADER, f"Bearer {token}"),) if token else ()


class TokenAuth(grpc.aio.ServerInterceptor):
    """Reject calls without a valid bearer token; health and reflection stay open."""

    def __init__(self, tokens: Iterable[str | SecretStr]) -> None:
        plain = [t.get_secret_value() if isinstance(t, SecretStr) else t for t in tokens]
        self._tokens = [t.encode() for t in plain if t]
        if not self._tokens:
            raise ValueError("TokenAuth needs at least one non-empty token")

    def allowed(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        """Constant-time check of the ``authorization`` header against every token."""
        header = next((v for k, v in metadata or () if k == AUTH_HEADER), None)
        if header is None:
            return False
        value = header.encode() if isinstance(header, str) else header
        scheme, _, presented = value.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        # Compare with every token (no early exit) so timing does not say which one matched.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(presented, token)
        return matched

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        if self.allowed(handler_call_details.invocation_metadata):  # type: ignore[attr-defined]
            return handler
        return _refusal(handler)


async def _refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


def _refusal(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that refuses the call before reading it."""
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_refuse)
    return grpc.unary_unary_rpc_method_handler(_refuse)


def token_auth(tokens: Sequence[str | SecretStr], service: str) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors for ``tokens``: none (and a warning) when no token is configured."""
    if not any(t.get_secret_value() if isinstance(t, SecretStr) else t for t in tokens):
        log.warning("%s: no gRPC auth token configured; every caller is accepted", service)
        return []
    return [TokenAuth(tokens)]


class ServerTls(BaseModel):
    """Server certificate; with ``client_ca_file`` clients must present a certificate (mTLS)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        ca = self.client_ca_file.read_bytes() if self.client_ca_file else None
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


class ClientTls(BaseModel):
    """Trust ``ca_file`` (system roots when unset); ``cert_file``/``key_file`` for mTLS.

    ``server_name`` overrides the name checked against the server certificate.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None

    def _check_pair(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("client TLS needs both cert_file and key_file, or neither")

    def credentials(self) -> grpc.ChannelCredentials:
        self._check_pair()
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
            private_key=self.key_file.read_bytes() if self.key_file else None,
            certificate_chain=self.cert_file.read_bytes() if self.cert_file else None,
        )

    def options(self) -> list[tuple[str, str]]:
        if self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []

    def ssl_context(self) -> ssl.SSLContext:
        """The same settings for an https:// client (httpx ``verify=``). ``server_name`` is a
        gRPC channel override with no https counterpart here: refused."""
        if self.server_name:
            raise ValueError("TLS server_name applies to grpc:// URLs only")
        self._check_pair()
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def bind(server: grpc.aio.Server, address: str, tls: ServerTls | None) -> int:
    """Listen on ``address`` with TLS when configured; returns the bound port."""
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, tls.credentials())


def aio_channel(
    address: str, tls: ClientTls | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """An aio channel to ``address``, over TLS when configured."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, tls.credentials(), options=[*options, *tls.options()])


__all__ = [
    "AUTH_HEADER",
    "ClientTls",
    "ServerTls",
    "TokenAuth",
    "aio_channel",
    "bearer_metadata",
    "bind",
    "parse_tokens",
    "token_auth",
]
