"""Ingest jobs over the in-memory store: progress, the interrupted-runner rule, store
outages while running, and a dead job store turning job creation into a 503."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from pydantic import ValidationError

from gateway.adapters.job_store import RedisJobStore
from gateway.config import GatewaySettings
from gateway.domain.job_record import HEARTBEAT, JobUpdate
from gateway.domain.jobs import MAX_ERRORS, Job, Jobs, MemoryJobStore
from gateway.errors import DependencyUnavailable, InvalidInput
from gateway.transport.rest.schemas import JobOut
from gateway.wiring import build_jobs

from .conftest import FakeClock


def batch(*ids: str) -> list[tuple[str, bytes, dict]]:
    return [(i, b"", {}) for i in ids]


async def test_progress_state_and_errors_capped(clock: FakeClock) -> None:
    async def run(chunk) -> int:
        if chunk[0][0].startswith("bad"):
            raise InvalidInput("not an image")
        return len(chunk)

    bad = batch(*(f"bad{i}" for i in range(60)))
    jobs = Jobs(clock=clock)
    job = await jobs.start([batch("a", "b"), bad], run, rejected=[{"id": "line 1", "error": "x"}])
    await jobs.wait()
    got = await jobs.get(job.id)
    assert got is not None
    assert (got.total, got.done, got.failed, got.state) == (63, 2, 61, "partial")
    assert len(got.errors) == MAX_ERRORS and got.errors[0] == {"id": "line 1", "error": "x"}
    assert got.errors[1] == {"id": "bad0", "error": "not an image"}
    assert JobOut.of(got).progress == 1.0


async def test_running_job_whose_heartbeat_stopped_reads_interrupted(clock: FakeClock) -> None:
    store = MemoryJobStore()
    jobs = Jobs(store, lease_s=30, heartbeat_s=5, clock=clock)
    await store.create(Job("j1", total=4, done=1, heartbeat_at=clock.now, created_at=clock.now))
    clock.now += 29
    assert (await jobs.get("j1")).state == "running"
    await store.update("j1", clock.now)  # a heartbeat renews the lease
    clock.now += 29
    assert (await jobs.get("j1")).state == "running"
    clock.now += 2
    assert (await jobs.get("j1")).state == "interrupted"
    assert (await store.get("j1")).state == "running"  # the rule is applied on read
    await store.update("j1", clock.now, JobUpdate(state="succeeded", done=3))
    clock.now += 3600
    finished = await jobs.get("j1")
    assert (finished.state, finished.done) == ("succeeded", 4)  # finished jobs never expire


async def test_runner_heartbeats_while_a_batch_is_slow() -> None:
    release = asyncio.Event()

    async def run(chunk) -> int:
        await release.wait()
        return len(chunk)

    jobs = Jobs(lease_s=1.0, heartbeat_s=0.05)  # a wide margin: CI machines stall
    job = await jobs.start([batch("a")], run)
    await asyncio.sleep(1.5)  # longer than the lease, with no progress
    assert (await jobs.get(job.id)).state == "running"
    release.set()
    await jobs.wait()
    assert (await jobs.get(job.id)).state == "succeeded"


class FlakyStore(MemoryJobStore):
    """Updates fail while ``down``."""

    down = False

    async def update(self, job_id, now, update=HEARTBEAT) -> None:
        if self.down:
            raise DependencyUnavailable("redis", "connection refused")
        await super().update(job_id, now, update)


async def test_progress_written_during_an_outage_is_kept_for_the_next_write(clock) -> None:
    store = FlakyStore()

    async def run(chunk) -> int:
        store.down = chunk[0][0] == "a"  # the write after the first batch fails
        return len(chunk)

    jobs = Jobs(store, clock=clock)
    job = await jobs.start([batch("a", "b"), batch("c")], run)
    await jobs.wait()
    got = await jobs.get(job.id)
    assert (got.done, got.state) == (3, "succeeded")


async def test_memory_store_keeps_the_newest_jobs(clock) -> None:
    store = MemoryJobStore(keep=2)
    for name in ("a", "b", "c"):
        await store.create(Job(name, total=1))
    assert [await store.get(n) is not None for n in ("a", "b", "c")] == [False, True, True]


async def test_job_store_down_is_a_503_not_a_500(rig, make_png) -> None:
    rig.services.jobs.store = RedisJobStore("redis://127.0.0.1:1/0", timeout_s=0.1)
    try:
        line = {
            "id": "x",
            "catalogue": "shoes",
            "image_b64": base64.b64encode(make_png(1)).decode(),
        }
        reply = await rig.client.post(
            "/v1/items:batch",
            content=json.dumps(line).encode(),
            headers={"X-API-Key": "k1", "content-type": "application/x-ndjson"},
        )
        assert reply.status_code == 503, reply.text
        assert reply.json()["error"]["code"] == "dependency_unavailable"
        assert rig.store.indexes["shoes/infogan"].get("x") is None  # no work started
        poll = await rig.client.get("/v1/jobs/abc")
        assert poll.status_code == 503 and poll.json()["error"]["code"] == "dependency_unavailable"
    finally:
        await rig.services.jobs.store.close()


async def test_wiring_picks_the_job_store_from_settings(settings) -> None:
    assert isinstance(build_jobs(settings).store, MemoryJobStore)
    shared = build_jobs(settings.model_copy(update={"redis_url": "redis://cache:6379/0"}))
    own = build_jobs(
        settings.model_copy(
            update={"redis_url": "redis://cache:6379/0", "job_redis_url": "redis://jobs:6379/1"}
        )
    )
    try:
        assert isinstance(shared.store, RedisJobStore) and isinstance(own.store, RedisJobStore)
        assert shared.store.client.connection_pool.connection_kwargs["host"] == "cache"
        assert own.store.client.connection_pool.connection_kwargs["host"] == "jobs"
    finally:
        await shared.store.close()
        await own.store.close()


def test_lease_must_outlast_two_heartbeats() -> None:
    with pytest.raises(ValidationError, match="JOB_LEASE_S"):
        GatewaySettings(dev=True, job_lease_s=8, job_heartbeat_s=5)
