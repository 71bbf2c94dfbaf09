"""Fetching a query image from ``image_url``: allow-listed origins only, one overall deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from gateway.errors import InvalidInput, PayloadTooLarge

DEFAULT_PORTS = {"http": 80, "https": 443}


def allowed(url: httpx.URL, entries: Sequence[str]) -> bool:
    """Whether ``url``'s scheme, host and port match an allow-list entry.

    An entry is ``host``, ``host:port`` or ``scheme://host[:port]``. Without a port only the
    scheme's default port (80, 443) matches: allowing a host must not open its other ports
    (its Redis, say) to anyone who can send a search. Without a scheme, http and https both
    match. Entries that do not parse match nothing."""
    if url.scheme not in DEFAULT_PORTS or not url.host:
        return False
    port = url.port or DEFAULT_PORTS[url.scheme]
    for entry in entries:
        try:
            allow = httpx.URL(entry if "://" in entry else "//" + entry)
        except httpx.InvalidURL:
            continue
        schemes = [allow.scheme] if allow.scheme else list(DEFAULT_PORTS)
        if url.scheme not in schemes or allow.host != url.host:
            continue
        if (allow.port or DEFAULT_PORTS.get(url.scheme)) == port:
            return True
    return False


async def fetch_image(
    url: str,
    *,
    allow: Sequence[str],
    max_bytes: int,
    deadline_s: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bytes:
    """GET ``url`` without redirects, at most ``max_bytes``, all within ``deadline_s``.

    The deadline covers connecting and every read together: per-read timeouts alone let a
    server that sends a byte a second hold a request (and its worker) indefinitely. A slow or
    failing URL is the caller's input, so it is a 400, not a gateway 5xx."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"bad image_url: {exc}") from exc
    if not allowed(parsed, allow):
        raise InvalidInput("image_url fetching is disabled for this host; upload the image instead")
    try:
        async with asyncio.timeout(deadline_s):
            return await _get(parsed, max_bytes, deadline_s, transport)
    except TimeoutError:
        raise InvalidInput(f"image_url did not deliver the image within {deadline_s} s") from None


async def _get(
    url: httpx.URL, max_bytes: int, timeout_s: float, transport: httpx.AsyncBaseTransport | None
) -> bytes:
    async with httpx.AsyncClient(
        timeout=timeout_s, follow_redirects=False, transport=transport
    ) as http:
        try:
            async with http.stream("GET", url) as reply:
                if reply.status_code != 200:
                    raise InvalidInput(f"image_url answered {reply.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in reply.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"image larger than {max_bytes} bytes")
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise InvalidInput(f"could not fetch image_url: {exc}") from exc
