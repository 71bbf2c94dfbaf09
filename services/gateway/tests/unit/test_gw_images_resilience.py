"""Input safety for images, and the circuit breaker / retry policy."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from gateway.adapters.cache import LruCache
from gateway.adapters.resilience import CircuitBreaker, DeadlineExceeded, Unavailable, call
from gateway.domain import images
from gateway.domain.images import ImageLimits, check_image, check_image_async
from gateway.errors import (
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMedia,
)


def test_allowed_formats_pass_and_webp_is_transcoded(make_png) -> None:
    data = make_png(1)
    assert check_image(data, 10**6, 10**6) == data
    webp = make_png(1, fmt="WEBP")
    out = check_image(webp, 10**6, 10**6)
    assert out.startswith(b"\x89PNG")


def test_rejections(make_png) -> None:
    with pytest.raises(UnsupportedMedia):
        check_image(b"%PDF-1.4 not an image", 10**6, 10**6)
    with pytest.raises(UnsupportedMedia):
        check_image(make_png(1, fmt="TIFF"), 10**6, 10**6)
    with pytest.raises(PayloadTooLarge):
        check_image(make_png(1), 10, 10**6)
    with pytest.raises(PayloadTooLarge):
        check_image(make_png(1, size=64), 10**6, 1000)
    with pytest.raises(InvalidInput):
        check_image(make_png(1, size=64)[:-200], 10**6, 10**6)
    with pytest.raises(InvalidInput):
        check_image(b"", 10, 10)


async def test_decode_runs_with_a_timeout(make_png) -> None:
    assert await check_image_async(make_png(2), ImageLimits(10**6, 10**6, 5.0)) == make_png(2)


def _jpeg(size: int, **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(out, "JPEG", **save)
    return out.getvalue()


async def test_small_baseline_images_are_checked_inline_the_rest_in_a_thread(
    make_png, monkeypatch: pytest.MonkeyPatch
) -> None:
    threaded: list[bytes] = []
    to_thread = asyncio.to_thread

    async def spy(func, data, *args):  # type: ignore[no-untyped-def]
        threaded.append(data)
        return await to_thread(func, data, *args)

    monkeypatch.setattr(images.asyncio, "to_thread", spy)
    limits = ImageLimits(10**8, 10**8, 5.0)
    inline = [_jpeg(256), make_png(3, size=64)]
    in_thread = [
        _jpeg(256, progressive=True),  # many scans: the cost is not bounded by the pixels
        _jpeg(600),  # more than INLINE_MAX_PIXELS
        make_png(4, size=32, fmt="WEBP"),  # another format (and re-encoded)
        b"not an image",  # refused from the thread, with the usual error
    ]
    for data in inline:
        assert await check_image_async(data, limits) == data
    assert threaded == []
    for data in in_thread[:2]:
        assert await check_image_async(data, limits) == data
    assert (await check_image_async(in_thread[2], limits)).startswith(b"\x89PNG")
    with pytest.raises(UnsupportedMedia):
        await check_image_async(in_thread[3], limits)
    assert threaded == in_thread
    # Inline keeps the same refusals: a truncated small JPEG is still a 400.
    with pytest.raises(InvalidInput, match="corrupt"):
        await check_image_async(_jpeg(256)[:-300], limits)


def _full_decode_fails(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_check_refuses_what_a_full_decode_refuses(progressive: bool) -> None:
    """The JPEG check decodes at reduced scale; a cut anywhere must still be refused."""
    noisy = Image.effect_noise((320, 240), 60).convert("RGB")  # entropy data worth cutting
    out = io.BytesIO()
    noisy.save(out, "JPEG", quality=90, progressive=progressive)
    data = out.getvalue()
    assert check_image(data, 10**7, 10**7) == data  # passed on as it came
    cuts = [len(data) * i // 10 for i in range(3, 10)] + [len(data) - 3]
    for cut in cuts:
        truncated = data[:cut]
        assert _full_decode_fails(truncated)
        with pytest.raises(InvalidInput, match="corrupt"):
            check_image(truncated, 10**7, 10**7)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_then_half_opens() -> None:
    clock = Clock()
    breaker = CircuitBreaker("dep", failures=2, reset_s=10, clock=clock)
    calls = 0

    async def failing(_: float) -> None:
        nonlocal calls
        calls += 1
        raise Unavailable("refused")

    with pytest.raises(DependencyUnavailable):
        await call(breaker, failing, deadline_s=1, retries=5, backoff_s=0.001)
    assert calls == 2 and breaker.state == "open"  # stopped retrying once open
    with pytest.raises(DependencyUnavailable, match="circuit open"):
        await call(breaker, failing, deadline_s=1)
    assert calls == 2
    clock.now = 11
    assert breaker.state == "half-open"

    async def ok(_: float) -> str:
        return "fine"

    assert await call(breaker, ok, deadline_s=1) == "fine"
    assert breaker.state == "closed"


async def test_only_unavailable_is_retried() -> None:
    attempts = {"n": 0}

    async def flaky(_: float) -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise Unavailable("blip")
        return "ok"

    assert await call(CircuitBreaker("d"), flaky, deadline_s=2, retries=2, backoff_s=0.001) == "ok"

    async def missing(_: float) -> None:
        attempts["n"] += 1
        raise NotFound("no")

    attempts["n"] = 0
    with pytest.raises(NotFound):
        await call(CircuitBreaker("d"), missing, deadline_s=2, retries=3)
    assert attempts["n"] == 1

    async def slow(_: float) -> None:
        attempts["n"] += 1
        raise DeadlineExceeded("slow")

    attempts["n"] = 0
    with pytest.raises(DependencyUnavailable, match="deadline"):
        await call(CircuitBreaker("d"), slow, deadline_s=2, retries=3)
    assert attempts["n"] == 1


async def test_lru_evicts_and_expires() -> None:
    clock = Clock()
    seen: list[str] = []
    cache = LruCache(2, seen.append, clock=clock)
    await cache.set("a", b"1", 10)
    await cache.set("b", b"2", 10)
    assert await cache.get("a") == b"1"
    await cache.set("c", b"3", 10)  # evicts b, the least recently used
    assert await cache.get("b") is None
    clock.now = 11
    assert await cache.get("a") is None
    assert seen == ["hit", "miss", "miss"]
