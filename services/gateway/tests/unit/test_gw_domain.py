"""Domain: cache keys, embed-then-search, similar-by-id, compare tokens."""

from __future__ import annotations

import asyncio

import pytest

from fashionrec_common import compare_token
from gateway.domain.compare import compare
from gateway.domain.keys import search_key
from gateway.domain.timing import Timings
from gateway.domain.types import RecommendQuery, normalise_filters
from gateway.errors import (
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMedia,
)


def test_cache_key_changes_with_everything_that_changes_the_answer() -> None:
    base = dict(
        kind="img",
        subject="h",
        index="shoes/infogan",
        model_version="1",
        generation=(3, 4),
        k=5,
        filters={},
    )
    key = search_key(**base)
    assert search_key(**base) == key
    for change in (
        {"model_version": "2"},
        {"generation": (3, 5)},
        {"k": 6},
        {"filters": {"class": ["heels"]}},
        {"subject": "h2"},
        {"index": "handbags/infogan"},
    ):
        assert search_key(**(base | change)) != key, change


def test_normalise_filters() -> None:
    assert normalise_filters({"b": "x", "a": ["z", "y"]}) == {"a": ["y", "z"], "b": ["x"]}
    with pytest.raises(InvalidInput):
        normalise_filters(["not", "a", "dict"])
    with pytest.raises(InvalidInput):
        normalise_filters({"a": [{"nested": 1}]})


async def test_search_caches_and_reindex_invalidates(recommender, fakes, make_png, clock) -> None:
    embedder, store, _ = fakes
    args = (RecommendQuery("shoes", None, 3), Timings())
    first = await recommender.search_image(make_png(4), *args)
    assert first.items[0].id == "4" and not first.cached
    assert (first.model, first.model_version, first.index) == ("infogan", "1", "shoes/infogan")
    second = await recommender.search_image(make_png(4), *args)
    assert second.cached and [h.id for h in second.items] == [h.id for h in first.items]
    assert embedder.calls == 1
    store.generations["shoes/infogan"] += 1  # a re-index by another writer
    # The generation is trusted for generation_ttl_s: at most that long an old answer.
    assert (await recommender.search_image(make_png(4), *args)).cached
    clock.now += recommender.generation_ttl_s
    third = await recommender.search_image(make_png(4), *args)
    assert not third.cached and embedder.calls == 2
    embedder.version = "2"  # a new model version (the real client trusts it for a TTL too)
    assert not (await recommender.search_image(make_png(4), *args)).cached


async def test_search_seeing_a_newer_index_is_not_cached(recommender, fakes, make_png) -> None:
    embedder, store, _ = fakes
    args = (RecommendQuery("shoes", None, 3), Timings())
    await recommender.search_image(make_png(1), *args)  # generation 0 is now trusted
    store.generations["shoes/infogan"] += 1
    stale_key = await recommender.search_image(make_png(2), *args)
    assert not stale_key.cached
    assert stale_key.index_generation == store.generations["shoes/infogan"]
    # Not stored under the old-generation key, and the generation is asked again at once.
    assert not (await recommender.search_image(make_png(2), *args)).cached
    assert (await recommender.search_image(make_png(2), *args)).cached
    assert embedder.calls == 3


async def test_a_missing_index_is_remembered_for_the_ttl(recommender, fakes, make_png, clock):
    _, store, _ = fakes
    args = (RecommendQuery(None, None, 3), Timings())
    calls: list[str] = []
    real = store.generation

    async def counted(index: str) -> tuple[int, ...]:
        calls.append(index)
        return await real(index)

    store.generation = counted
    for _ in range(3):
        assert (await recommender.search_image(make_png(8), *args)).catalogue == "shoes"
    assert sorted(calls) == ["handbags/infogan", "shoes/infogan"]
    handbags = (RecommendQuery("handbags", None, 3), Timings())
    with pytest.raises(NotFound):  # remembered: still not asked again
        await recommender.search_image(make_png(8), *handbags)
    assert len(calls) == 2
    await store.ensure_index("handbags/infogan", 8)  # created by another writer
    clock.now += recommender.generation_ttl_s  # ... and seen within the TTL
    assert (await recommender.search_image(make_png(8), *handbags)).items == []
    assert calls.count("handbags/infogan") == 2


async def test_own_writes_invalidate_the_generation_at_once(recommender, make_png) -> None:
    args = (RecommendQuery("shoes", None, 3), Timings())
    await recommender.search_image(make_png(7), *args)
    assert (await recommender.search_image(make_png(7), *args)).cached
    await recommender.ingest("shoes", ["infogan"], [("new", make_png(70), {"class": "heels"})])
    assert not (await recommender.search_image(make_png(7), *args)).cached


async def test_cache_is_checked_before_decoding_but_filled_only_after(
    recommender, fakes, make_png
) -> None:
    embedder, _, _ = fakes
    args = (RecommendQuery("shoes", None, 3), Timings())
    for bad in (b"%PDF-1.4 not an image", make_png(3)[:-40]):
        for _ in range(2):  # a rejected upload is never cached: the second try fails too
            with pytest.raises((InvalidInput, UnsupportedMedia)):
                await recommender.search_image(bad, *args)
    with pytest.raises(PayloadTooLarge):
        await recommender.search_image(b"x" * (recommender.image_limits.max_bytes + 1), *args)
    assert embedder.calls == 0
    timings = Timings()
    await recommender.search_image(make_png(3), args[0], timings)
    assert "decode" in timings.stages
    timings = Timings()
    assert (await recommender.search_image(make_png(3), args[0], timings)).cached
    assert "decode" not in timings.stages and embedder.calls == 1


async def test_automatic_catalogue_skips_missing_indexes(recommender, make_png) -> None:
    result = await recommender.search_image(make_png(2), RecommendQuery(None, None, 2), Timings())
    assert result.catalogue == "shoes" and result.items[0].id == "2"


async def test_partial_results_are_not_cached(recommender, fakes, make_png) -> None:
    _, store, _ = fakes
    store.partial = True
    args = (RecommendQuery("shoes", None, 3), Timings())
    assert (await recommender.search_image(make_png(1), *args)).partial
    assert not (await recommender.search_image(make_png(1), *args)).cached


async def test_similar_works_with_the_embedder_down(recommender, fakes) -> None:
    embedder, _, _ = fakes
    embedder.down = True
    heels = RecommendQuery(None, None, 4, {"class": ["heels"]})
    result = await recommender.similar("3", heels, Timings())
    assert "3" not in [h.id for h in result.items] and len(result.items) == 4
    assert all(h.metadata["class"] == "heels" for h in result.items)
    assert result.model_version is None and result.catalogue == "shoes"
    with pytest.raises(DependencyUnavailable):
        await recommender.search_image(b"x", RecommendQuery("shoes", None, 1), Timings())


async def test_similar_unknown_item_and_bad_k(recommender) -> None:
    with pytest.raises(NotFound):
        await recommender.similar("nope", RecommendQuery("shoes", None, 3), Timings())
    with pytest.raises(InvalidInput):
        await recommender.similar("1", RecommendQuery("shoes", None, 0), Timings())
    with pytest.raises(InvalidInput):
        await recommender.similar("1", RecommendQuery("hats", None, 1), Timings())


async def test_ingest_then_delete(recommender, fakes, make_png) -> None:
    _, store, _ = fakes
    await recommender.ingest("handbags", ["infogan"], [("b1", make_png(50), {"class": "clutches"})])
    assert store.indexes["handbags/infogan"]["b1"].metadata == {"class": "clutches"}
    assert await recommender.delete("b1", None) == ["handbags/infogan"]
    with pytest.raises(NotFound):
        await recommender.delete("b1", None)


async def test_compare_blinds_and_signs(recommender, fakes) -> None:
    _, store, _ = fakes
    store.indexes["shoes/other"] = dict(store.indexes["shoes/infogan"])
    store.generations["shoes/other"] = 1
    query, catalogue, rows, token = await compare(
        recommender,
        item_id="5",
        catalogue=None,
        models=["infogan", "other"],
        k=3,
        secret="s",
        timings=Timings(),
    )
    assert query.id == "5" and catalogue == "shoes" and len(rows) == 2
    shown = compare_token.decode("s", token, max_age_s=60)
    assert shown.query_id == "5" and shown.catalogue == "shoes"
    assert sorted(r.model for r in shown.rows) == ["infogan", "other"]
    assert [list(r.items) for r in shown.rows] == [[h.id for h in row] for row in rows]
    assert "infogan" not in token and "other" not in token
    with pytest.raises(compare_token.CompareTokenInvalid):
        compare_token.decode("other-secret", token, max_age_s=60)
    with pytest.raises(InvalidInput):
        await compare(
            recommender, item_id="5", catalogue=None, models=["infogan"], k=3, secret="s",
            timings=Timings(),
        )  # fmt: skip


def held_lookups(fakes):  # type: ignore[no-untyped-def]
    """The fake store's generation lookups recorded and held until ``release`` is set."""
    _, store, _ = fakes
    calls: list[str] = []
    release = asyncio.Event()
    real = store.generation

    async def held(index: str) -> tuple[int, ...]:
        calls.append(index)
        await release.wait()
        return await real(index)

    store.generation = held
    return store, calls, release


async def test_expired_generation_is_looked_up_once_for_concurrent_requests(
    recommender, fakes, make_png, clock
) -> None:
    """Single flight: 20 requests arriving when the TTL has run out share one DescribeIndex
    (each used to start its own), and an error reaches every one of them."""
    store, calls, release = held_lookups(fakes)
    args = (RecommendQuery("shoes", None, 3), Timings())
    requests = [
        asyncio.create_task(recommender.search_image(make_png(i), *args)) for i in range(20)
    ]
    await asyncio.sleep(0.01)
    release.set()
    assert all(r.items for r in await asyncio.gather(*requests))
    assert calls == ["shoes/infogan"]

    clock.now += recommender.generation_ttl_s
    release.clear()
    store.down = True
    requests = [asyncio.create_task(recommender.search_image(make_png(i), *args)) for i in range(5)]
    await asyncio.sleep(0.01)
    release.set()
    outcomes = await asyncio.gather(*requests, return_exceptions=True)
    assert len(calls) == 2
    assert all(isinstance(o, DependencyUnavailable) for o in outcomes), outcomes


async def test_generation_past_half_its_ttl_is_refreshed_beside_requests(
    recommender, fakes, make_png, clock
) -> None:
    """Refresh ahead: requests past half the TTL neither wait for the lookup nor start a
    second one; its answer is kept once it lands; past the TTL a request waits."""
    store, calls, release = held_lookups(fakes)
    args = (RecommendQuery("shoes", None, 3), Timings())
    release.set()
    assert (await recommender.search_image(make_png(1), *args)).items
    assert len(calls) == 1
    release.clear()
    clock.now += recommender.generation_ttl_s * 0.6
    served = [await recommender.search_image(make_png(i), *args) for i in (2, 3, 4)]
    assert all(r.items for r in served)  # answered while the lookup is still held back
    await asyncio.sleep(0.01)
    assert len(calls) == 2  # one lookup in the background for the three requests
    release.set()
    await asyncio.sleep(0.01)
    clock.now += recommender.generation_ttl_s * 0.6  # 1.2 TTLs after the first lookup, 0.6
    assert (await recommender.search_image(make_png(5), *args)).items  # after the second
    assert len(calls) == 2  # the background answer was stored: not looked up again
    release.clear()
    clock.now += recommender.generation_ttl_s  # past the TTL: this request waits for it
    waiting = asyncio.create_task(recommender.search_image(make_png(6), *args))
    await asyncio.sleep(0.01)
    assert not waiting.done() and len(calls) == 3
    release.set()
    assert (await waiting).items
