"""Background ingest jobs with progress, in this process (the gateway stores nothing durable)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError

log = logging.getLogger(__name__)

Batch = Sequence[tuple[str, bytes, dict]]


@dataclass
class Job:
    id: str
    total: int
    done: int = 0
    failed: int = 0
    state: str = "running"  # running | succeeded | failed
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "progress": (self.done + self.failed) / self.total if self.total else 1.0,
            "errors": self.errors[:50],
        }


class Jobs:
    """Runs ingest batches in the background; keeps the newest ``keep`` jobs."""

    def __init__(self, keep: int = 200) -> None:
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.keep = keep

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def start(
        self,
        batches: Sequence[Batch],
        run: Callable[[Batch], Awaitable[int]],
        rejected: Sequence[dict[str, str]] = (),
    ) -> Job:
        total = sum(len(b) for b in batches) + len(rejected)
        job = Job(uuid.uuid4().hex, total, failed=len(rejected), errors=list(rejected))
        self._jobs[job.id] = job
        while len(self._jobs) > self.keep:
            self._jobs.pop(next(iter(self._jobs)))
        task = asyncio.create_task(self._run(job, batches, run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(
        self, job: Job, batches: Sequence[Batch], run: Callable[[Batch], Awaitable[int]]
    ) -> None:
        for batch in batches:
            try:
                job.done += await run(batch)
            except GatewayError as exc:
                job.failed += len(batch)
                job.errors.extend({"id": i, "error": exc.message} for i, _, _ in batch)
            except Exception:  # noqa: BLE001 - a job reports failures, it never crashes the app
                log.exception("ingest batch failed", extra={"job_id": job.id})
                job.failed += len(batch)
                job.errors.extend({"id": i, "error": "internal error"} for i, _, _ in batch)
        job.state = "succeeded" if job.failed == 0 else "failed" if job.done == 0 else "partial"

    async def wait(self) -> None:
        """For tests and shutdown: let running jobs finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
