"""Compare tokens (minted by the gateway) and annotator tokens (issued here, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets

from annotation.errors import ForgedToken
from fashionrec_common import compare_token
from fashionrec_common.compare_token import Comparison, ShownRow

__all__ = [
    "Comparison",
    "ShownRow",
    "hash_annotator_token",
    "new_annotator_token",
    "sign_comparison",
    "verify_comparison",
]

ANNOTATOR_PREFIX = "ann_"


def sign_comparison(secret: str, comparison: Comparison) -> str:
    """What the gateway does (the same shared codec); used by tests and tools to mint tokens."""
    return compare_token.encode(secret, comparison)


def verify_comparison(secret: str, token: str, max_age_s: int) -> Comparison:
    """Decrypt, check the age and the payload shape; any failure is ``ForgedToken``."""
    try:
        return compare_token.decode(secret, token, max_age_s)
    except compare_token.CompareTokenError as exc:
        raise ForgedToken(str(exc)) from exc


def new_annotator_token() -> str:
    """A random bearer token; only its hash is stored."""
    return ANNOTATOR_PREFIX + secrets.token_urlsafe(32)


def hash_annotator_token(token: str) -> str:
    """SHA-256 is enough: tokens are 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()
