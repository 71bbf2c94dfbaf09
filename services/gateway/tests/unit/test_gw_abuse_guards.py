"""Principals, the Redis rate limiter's fallback, the image_url allow-list and filter limits."""

from __future__ import annotations

import httpx
import pytest

from gateway.adapters.image_url import allowed
from gateway.adapters.ratelimit import RedisRateLimiter
from gateway.domain.principals import key_id, peer_address, principal
from gateway.domain.types import parse_filters
from gateway.errors import InvalidInput, RateLimited

KEYS = ["alpha-key-123", "beta-key-456"]


@pytest.mark.parametrize(
    ("presented", "expected"),
    [
        ("alpha-key-123", "key:" + key_id("alpha-key-123")),
        ("beta-key-456", "key:" + key_id("beta-key-456")),
        ("made-up", "anon:10.0.0.7"),
        ("alpha-key-12", "anon:10.0.0.7"),  # a prefix of a real key is not that key
        ("", "anon:10.0.0.7"),
        (None, "anon:10.0.0.7"),
    ],
)
def test_principal(presented: str | None, expected: str) -> None:
    assert principal(presented, KEYS, "10.0.0.7") == expected
    assert "alpha" not in principal(presented, KEYS, "10.0.0.7")


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.7:51234", "10.0.0.7"),
        ("ipv6:[::1]:51234", "::1"),
        ("ipv6:%5B::1%5D:51234", "::1"),
        ("unix:/tmp/sock", "unix:/tmp/sock"),
    ],
)
def test_peer_address(peer: str, address: str) -> None:
    assert peer_address(peer) == address


async def test_redis_down_falls_back_to_the_local_bucket() -> None:
    """Not a 500 and not unlimited: each replica keeps its own bucket meanwhile."""
    fallbacks: list[int] = []
    limiter = RedisRateLimiter(
        "redis://127.0.0.1:1/0", 2, timeout_s=0.1, on_fallback=lambda: fallbacks.append(1)
    )
    try:
        await limiter.hit("anon:1.2.3.4")
        await limiter.hit("anon:1.2.3.4")
        with pytest.raises(RateLimited):
            await limiter.hit("anon:1.2.3.4")
        await limiter.hit("anon:5.6.7.8")
    finally:
        await limiter.close()
    assert len(fallbacks) == 4


@pytest.mark.parametrize(
    ("url", "entries", "ok"),
    [
        ("http://img.example/a.png", ["img.example"], True),
        ("https://img.example/a.png", ["img.example"], True),
        ("http://img.example:6379/", ["img.example"], False),
        ("https://img.example:80/", ["img.example"], False),
        ("http://img.example:8080/a", ["img.example:8080"], True),
        ("http://img.example/a", ["img.example:8080"], False),
        ("https://img.example/a", ["http://img.example"], False),
        ("https://img.example:8443/a", ["https://img.example:8443"], True),
        ("http://other.example/a", ["img.example"], False),
        ("ftp://img.example/a", ["img.example"], False),
        ("http://img.example/a", [], False),
    ],
)
def test_image_url_allow_list_matches_scheme_host_and_port(
    url: str, entries: list[str], ok: bool
) -> None:
    assert allowed(httpx.URL(url), entries) is ok


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ('{"class": "heels"}', {"class": ["heels"]}),
        ('{"class": ["heels", "flats"]}', {"class": ["flats", "heels"]}),
        ('{"class": "[[[{{{"}', {"class": ["[[[{{{"]}),  # brackets inside strings do not nest
        ('{"a\\"": "[["}', {'a"': ["[["]}),
        ("", {}),
        (None, {}),
        ('{"a": {"b": "c"}}', InvalidInput),
        ('{"a": [["b"]]}', InvalidInput),
        ("[" * 1500 + "]" * 1500, InvalidInput),
        ('{"a":' * 3000 + "1" + "}" * 3000, InvalidInput),
        ('{"a": "' + "x" * 5000 + '"}', InvalidInput),
        ("{" + ",".join(f'"k{i}": "v"' for i in range(33)) + "}", InvalidInput),
        ("not json", InvalidInput),
    ],
)
def test_parse_filters(text: str | None, result: object) -> None:
    if result is InvalidInput:
        with pytest.raises(InvalidInput):
            parse_filters(text)
    else:
        assert parse_filters(text) == result
