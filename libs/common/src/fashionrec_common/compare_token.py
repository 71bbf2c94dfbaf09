"""The compare token: which model made each row of a blind comparison, sealed for the voter.

It is a wire contract between two services, like a proto: the gateway encodes it in
``/v1/compare`` and the annotation service decodes it when a vote arrives. The token travels
through the annotator's browser, so it is encrypted as well as authenticated (Fernet: AES-128
CBC + HMAC-SHA256) with a key derived from the shared vote-token secret; a signed-only token
would let annotators read the row-to-model map and the comparison would no longer be blind.

Fernet leaves the mint time and the ciphertext length in the clear. Rows are shuffled before
encoding, so the length (the same for every order of the same models) reveals nothing of the
order; that is also why the payload is not compressed, as its compressed length would vary
with the order. Raises :class:`CompareTokenExpired` or :class:`CompareTokenInvalid`; each
service maps them to its own errors.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "PREFIX",
    "SALT",
    "Comparison",
    "CompareTokenError",
    "CompareTokenExpired",
    "CompareTokenInvalid",
    "ShownRow",
    "decode",
    "encode",
    "seal",
    "unseal",
]

# Bump both together when the payload changes: tokens of another version are refused.
PREFIX = "fc2."
SALT = b"fashionrec.compare.v2"
# Fernet tokens minted this far in the future (clock skew between services) are still valid.
MAX_CLOCK_SKEW_S = 60


class CompareTokenError(ValueError):
    """The token cannot be used for a vote."""


class CompareTokenExpired(CompareTokenError):
    """Authentic, but older than the allowed age."""


class CompareTokenInvalid(CompareTokenError):
    """Not minted with this secret and version, altered, or a malformed payload."""


@dataclass(frozen=True)
class ShownRow:
    """One row of the comparison: the model that made it and its item ids, in display order."""

    model: str
    items: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "items": list(self.items)}

    @classmethod
    def from_json(cls, data: Any) -> ShownRow:
        """Raises KeyError or TypeError on a malformed row."""
        return cls(model=str(data["model"]), items=tuple(str(i) for i in data["items"]))


@dataclass(frozen=True)
class Comparison:
    """What the annotator saw (rows in display order) and which model made each row."""

    query_id: str
    catalogue: str
    rows: tuple[ShownRow, ...]
    nonce: str


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    """HKDF with a fixed salt, so this key differs from any other use of the same secret."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=SALT, info=b"fashionrec compare token"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, payload: Mapping[str, Any], now: float | None = None) -> str:
    """Encrypt any JSON payload; :func:`encode` is the one the services use."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    at = int(time.time() if now is None else now)
    return PREFIX + _fernet(secret).encrypt_at_time(body, at).decode("ascii")


def unseal(secret: str, token: str, max_age_s: float, now: float | None = None) -> Any:
    """Decrypt and check the age; the JSON payload, not yet checked for shape."""
    if not isinstance(token, str) or not token.startswith(PREFIX):
        raise CompareTokenInvalid("compare token has an unknown format or version")
    raw = token[len(PREFIX) :].encode("ascii", "replace")
    fernet = _fernet(secret)
    try:
        body = fernet.decrypt(raw)  # no ttl here: expiry is told apart from forgery below
        minted = fernet.extract_timestamp(raw)
    except InvalidToken as exc:
        raise CompareTokenInvalid("compare token signature is invalid") from exc
    age = (time.time() if now is None else now) - minted
    if age > max_age_s:
        raise CompareTokenExpired("compare token expired")
    if age < -MAX_CLOCK_SKEW_S:
        raise CompareTokenInvalid("compare token is dated in the future")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CompareTokenInvalid("compare token payload is not JSON") from exc


def encode(secret: str, comparison: Comparison, now: float | None = None) -> str:
    """The token the gateway hands out with a comparison."""
    payload = {
        "query_id": comparison.query_id,
        "catalogue": comparison.catalogue,
        "rows": [r.to_json() for r in comparison.rows],
        "nonce": comparison.nonce,
    }
    return seal(secret, payload, now)


def decode(secret: str, token: str, max_age_s: float, now: float | None = None) -> Comparison:
    """Check secret, version and age, then the payload shape."""
    payload = unseal(secret, token, max_age_s, now)
    try:
        rows = tuple(ShownRow.from_json(r) for r in payload["rows"])
        comparison = Comparison(
            query_id=str(payload["query_id"]),
            catalogue=str(payload["catalogue"]),
            rows=rows,
            nonce=str(payload["nonce"]),
        )
    except (KeyError, TypeError) as exc:
        raise CompareTokenInvalid("compare token payload is malformed") from exc
    if not rows or not comparison.nonce or not comparison.query_id:
        raise CompareTokenInvalid("compare token payload is incomplete")
    return comparison
