"""Compare tokens (signed by the gateway) and annotator tokens (issued here, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from annotation.errors import ForgedToken

COMPARE_SALT = "fashionrec.compare.v1"
ANNOTATOR_PREFIX = "ann_"


@dataclass(frozen=True)
class ShownRow:
    model: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """What the annotator saw, as the gateway signed it (rows in display order)."""

    query_id: str
    catalogue: str
    rows: tuple[ShownRow, ...]
    nonce: str


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=COMPARE_SALT)


def sign_comparison(secret: str, comparison: Comparison) -> str:
    """What the gateway does; used by tests and tools to mint valid tokens."""
    payload = {
        "query_id": comparison.query_id,
        "catalogue": comparison.catalogue,
        "rows": [{"model": r.model, "items": list(r.items)} for r in comparison.rows],
        "nonce": comparison.nonce,
    }
    return _serializer(secret).dumps(payload)


def verify_comparison(secret: str, token: str, max_age_s: int) -> Comparison:
    """Check the signature and age, then the payload shape; any failure is ``ForgedToken``."""
    try:
        payload = _serializer(secret).loads(token, max_age=max_age_s)
    except SignatureExpired as exc:
        raise ForgedToken("compare token expired") from exc
    except BadSignature as exc:
        raise ForgedToken("compare token signature is invalid") from exc
    try:
        rows = tuple(
            ShownRow(model=str(r["model"]), items=tuple(str(i) for i in r["items"]))
            for r in payload["rows"]
        )
        comparison = Comparison(
            query_id=str(payload["query_id"]),
            catalogue=str(payload["catalogue"]),
            rows=rows,
            nonce=str(payload["nonce"]),
        )
    except (KeyError, TypeError) as exc:
        raise ForgedToken("compare token payload is malformed") from exc
    if not rows or not comparison.nonce or not comparison.query_id:
        raise ForgedToken("compare token payload is incomplete")
    return comparison


def new_annotator_token() -> str:
    """A random bearer token; only its hash is stored."""
    return ANNOTATOR_PREFIX + secrets.token_urlsafe(32)


def hash_annotator_token(token: str) -> str:
    """SHA-256 is enough: tokens are 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()
