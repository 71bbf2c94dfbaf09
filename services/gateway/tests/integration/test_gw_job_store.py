"""RedisJobStore against a real Redis (db 12, keys under a unique prefix)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis

from gateway.adapters.job_store import RedisJobStore
from gateway.domain.job_record import JobUpdate
from gateway.domain.jobs import MAX_ERRORS, Job, Jobs
from gateway.errors import DependencyUnavailable

from .conftest import unique_prefix

pytestmark = pytest.mark.integration
URL = "redis://127.0.0.1:6379/12"
TTL = 3600


@pytest.fixture
def prefix() -> Iterator[str]:
    with unique_prefix(URL) as prefix:
        yield prefix


@pytest.fixture
async def store(prefix: str) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(URL, prefix=prefix, ttl_s=TTL, keep=3)
    yield store
    await store.close()


async def test_round_trip_and_concurrent_increments(store: RedisJobStore) -> None:
    errors = [{"id": "line 1", "error": "bad json"}]
    await store.create(Job("j1", total=200, failed=1, errors=errors, created_at=5.0, owner="a:1"))
    await asyncio.gather(*(store.update("j1", 10.0 + i, JobUpdate(done=1)) for i in range(100)))
    await asyncio.gather(*(store.update("j1", 20.0, JobUpdate(failed=2)) for _ in range(20)))
    got = await store.get("j1")
    assert got is not None
    assert (got.total, got.done, got.failed, got.state) == (200, 100, 41, "running")
    assert (got.errors, got.created_at, got.owner) == (errors, 5.0, "a:1")
    assert got.updated_at == got.heartbeat_at == 20.0
    await store.update("j1", 30.0)  # a heartbeat alone is not progress
    got = await store.get("j1")
    assert (got.heartbeat_at, got.updated_at) == (30.0, 20.0)
    await store.update("j1", 40.0, JobUpdate(state="partial"))
    assert (await store.get("j1")).state == "partial"
    assert await store.get("nope") is None


async def test_a_burst_waits_for_a_connection_longer_than_the_socket_timeout(
    store: RedisJobStore,
) -> None:
    """Every pooled connection busy for 1.5 s (past the 1 s socket timeout): a write queues
    and succeeds. With the socket timeout as the pool wait it failed on a loaded CI host."""
    await store.create(Job("jb", total=1))
    pool = store.client.connection_pool
    held = [await pool.get_connection() for _ in range(pool.max_connections)]

    async def release_later() -> None:
        await asyncio.sleep(1.5)
        for conn in held:
            await pool.release(conn)

    releaser = asyncio.create_task(release_later())
    await store.update("jb", 2.0, JobUpdate(done=1))
    await releaser
    assert (await store.get("jb")).done == 1


async def test_errors_capped_keeping_the_first(store: RedisJobStore) -> None:
    await store.create(Job("j2", total=100))
    for start in range(0, 100, 30):
        chunk = [{"id": str(i), "error": "x"} for i in range(start, start + 30)]
        await store.update("j2", 1.0, JobUpdate(failed=30, errors=chunk))
    got = await store.get("j2")
    assert len(got.errors) == MAX_ERRORS and got.errors[0]["id"] == "0"
    assert got.errors[-1]["id"] == str(MAX_ERRORS - 1)


async def test_records_expire_and_writes_renew_the_ttl(store: RedisJobStore, prefix: str) -> None:
    await store.create(Job("j3", total=2, errors=[{"id": "a", "error": "e"}]))
    client = redis.Redis.from_url(URL)
    try:
        key = f"{prefix}job:j3"
        assert 0 < await client.ttl(key) <= TTL and 0 < await client.ttl(key + ":errors") <= TTL
        await client.expire(key, 5)
        await store.update("j3", 1.0, JobUpdate(done=1))
        assert await client.ttl(key) > TTL - 5
        await client.delete(key, key + ":errors")
        await store.update("j3", 2.0, JobUpdate(done=1))  # gone: not resurrected as partial
        assert not await client.exists(key) and await store.get("j3") is None
    finally:
        await client.aclose()


async def test_number_of_jobs_is_bounded(store: RedisJobStore) -> None:
    for i in range(5):
        await store.create(Job(f"k{i}", total=1, created_at=100.0 + i))
    kept = [await store.get(f"k{i}") is not None for i in range(5)]
    assert kept == [False, False, True, True, True]


async def test_a_dead_runner_reads_interrupted_on_any_replica(store: RedisJobStore) -> None:
    now = [1000.0]
    replica_a = Jobs(store, lease_s=30, heartbeat_s=5, clock=lambda: now[0])
    replica_b = Jobs(
        RedisJobStore(URL, prefix=store.prefix), lease_s=30, heartbeat_s=5, clock=lambda: now[0]
    )
    gate = asyncio.Event()

    async def run(chunk) -> int:
        await gate.wait()
        return len(chunk)

    job = await replica_a.start([[("a", b"", {})]], run)
    try:
        now[0] += 20
        assert (await replica_b.get(job.id)).state == "running"
        now[0] += 20  # no heartbeat for 40 s (the fake clock never moved for the runner)
        assert (await replica_b.get(job.id)).state == "interrupted"
        gate.set()
        await replica_a.wait()
        assert (await replica_b.get(job.id)).state == "succeeded"
    finally:
        gate.set()
        await replica_b.store.close()


async def test_redis_down_raises_dependency_unavailable() -> None:
    store = RedisJobStore("redis://127.0.0.1:1/0", timeout_s=0.1)
    try:
        for call in (
            store.create(Job("x", total=1)),
            store.get("x"),
            store.update("x", 1.0, JobUpdate(done=1)),
        ):
            with pytest.raises(DependencyUnavailable) as info:
                await call
            assert info.value.dependency == "redis"
    finally:
        await store.close()
