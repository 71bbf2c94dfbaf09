"""Background ingest jobs with progress kept in a :class:`~gateway.domain.ports.JobStore`.

The work runs in the replica that accepted the job (an asyncio task); its record lives in
the store, so with Redis any replica answers a poll and the record outlives a restart. A
runner refreshes ``heartbeat_at`` while it works; a ``running`` record whose heartbeat is
older than the lease is reported ``interrupted`` (its replica stopped mid-job), never left
``running`` forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from gateway.domain.job_record import HEARTBEAT, INTERRUPTED, MAX_ERRORS, RUNNING, Job, JobUpdate
from gateway.domain.ports import JobStore
from gateway.errors import DependencyUnavailable, GatewayError

log = logging.getLogger(__name__)

Batch = Sequence[tuple[str, bytes, dict]]


def _failed(batch: Batch, message: str) -> JobUpdate:
    return JobUpdate(failed=len(batch), errors=[{"id": i, "error": message} for i, _, _ in batch])


class MemoryJobStore:
    """This process only (local runs, unit tests): keeps the newest ``keep`` jobs."""

    def __init__(self, keep: int = 200) -> None:
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    async def create(self, job: Job) -> None:
        self._jobs[job.id] = replace(job, errors=job.errors[:MAX_ERRORS])
        while len(self._jobs) > self.keep:
            self._jobs.popitem(last=False)

    async def get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return None if job is None else replace(job, errors=list(job.errors))

    async def update(self, job_id: str, now: float, update: JobUpdate = HEARTBEAT) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.apply(update, now)

    async def close(self) -> None:
        self._jobs.clear()


class Jobs:
    """Starts ingest jobs, runs their batches in the background, answers polls."""

    def __init__(
        self,
        store: JobStore | None = None,
        *,
        lease_s: float = 30.0,
        heartbeat_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store: JobStore = store or MemoryJobStore()
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, job_id: str) -> Job | None:
        """The stored job; ``interrupted`` when it says running but its runner went silent."""
        job = await self.store.get(job_id)
        if job is not None and job.state == RUNNING:
            if self.clock() - job.heartbeat_at > self.lease_s:
                job.state = INTERRUPTED
        return job

    async def start(
        self,
        batches: Sequence[Batch],
        run: Callable[[Batch], Awaitable[int]],
        rejected: Sequence[dict[str, str]] = (),
    ) -> Job:
        """Record the job, then run it; a store that is down fails this call (503) before
        any work starts, so a client never holds a job id nobody can answer for."""
        total = sum(len(b) for b in batches) + len(rejected)
        now = self.clock()
        job = Job(
            uuid.uuid4().hex,
            total,
            failed=len(rejected),
            errors=list(rejected[:MAX_ERRORS]),
            created_at=now,
            updated_at=now,
            heartbeat_at=now,
            owner=self.owner,
        )
        await self.store.create(job)
        task = asyncio.create_task(self._run(job, batches, run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(
        self, job: Job, batches: Sequence[Batch], run: Callable[[Batch], Awaitable[int]]
    ) -> None:
        beat = asyncio.create_task(self._beat(job.id))
        done, failed = 0, job.failed
        pending = HEARTBEAT
        try:
            for batch in batches:
                try:
                    n = await run(batch)
                    done += n
                    pending = pending.then(JobUpdate(done=n))
                except GatewayError as exc:
                    failed += len(batch)
                    pending = pending.then(_failed(batch, exc.message))
                except Exception:  # noqa: BLE001 - a job reports failures, it never crashes the app
                    log.exception("ingest batch failed", extra={"job_id": job.id})
                    failed += len(batch)
                    pending = pending.then(_failed(batch, "internal error"))
                pending = await self._write(job.id, pending)
            state = "succeeded" if failed == 0 else "failed" if done == 0 else "partial"
            await self._write(job.id, pending.then(JobUpdate(state=state)))
        finally:
            beat.cancel()

    async def _write(self, job_id: str, pending: JobUpdate) -> JobUpdate:
        """Write ``pending``; on a store outage keep it for the next write. A final state
        that cannot be written leaves the job to read ``interrupted`` once the lease ends."""
        try:
            await self.store.update(job_id, self.clock(), pending)
        except DependencyUnavailable as exc:
            log.warning("job %s: progress not recorded: %s", job_id, exc.message)
            return pending
        return HEARTBEAT

    async def _beat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.store.update(job_id, self.clock())
            except DependencyUnavailable as exc:
                log.warning("job %s: heartbeat not recorded: %s", job_id, exc.message)

    async def wait(self) -> None:
        """For tests and shutdown: let running jobs finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.wait()
        await self.store.close()
