"""Who a request counts as, for rate limits: shared by the REST and gRPC transports."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import unquote


def key_id(key: str) -> str:
    """A stable name for a configured key: bucket names (and Redis keys) never hold the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def known_key(presented: str | None, keys: Sequence[str]) -> str | None:
    """The configured key ``presented`` equals, or None; compared in constant time against
    every key, so the timing does not say which key, or how much of one, matched."""
    if not presented:
        return None
    found = None
    for key in keys:
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = key
    return found


def principal(presented: str | None, keys: Sequence[str], address: str) -> str:
    """``key:<id>`` for a configured key; anything else (no key, a made-up one) is
    ``anon:<address>``, one bucket per client address, so inventing keys buys nothing."""
    key = known_key(presented, keys)
    if key is not None:
        return "key:" + key_id(key)
    return "anon:" + (address or "unknown")


def peer_address(peer: str) -> str:
    """A gRPC peer (``ipv4:10.0.0.7:51234``, ``ipv6:[::1]:51234``) without its port: every
    connection from one host shares the host's bucket."""
    kind, _, rest = unquote(peer).partition(":")  # newer gRPC writes [::1] as %5B::1%5D
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer
