"""Server-side batching: concurrent requests to one signature are merged into one model call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from embedder_server.errors import Code, ServingError

log = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]
QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclass(frozen=True)
class BatchingOptions:
    """The subset of TF Serving's BatchingParameters we honour."""

    max_batch_size: int = 32
    batch_timeout_s: float = 0.002
    num_batch_threads: int = 1
    max_enqueued_batches: int = 100


@dataclass
class _Task:
    inputs: Tensors
    rows: int
    future: asyncio.Future[Tensors]
    enqueued: float = field(default_factory=time.monotonic)


class Batcher:
    """A bounded queue drained by worker coroutines that run merged batches off the event loop."""

    def __init__(
        self,
        run: Callable[[Tensors], Tensors],
        options: BatchingOptions,
        on_batch: Callable[[int, int], None] = lambda rows, queued: None,
    ) -> None:
        self._run = run
        self._opts = options
        self._on_batch = on_batch
        self._queue: deque[_Task] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._workers = [
            asyncio.get_running_loop().create_task(self._worker())
            for _ in range(max(1, options.num_batch_threads))
        ]

    @property
    def max_queue(self) -> int:
        return self._opts.max_enqueued_batches * self._opts.max_batch_size

    def __len__(self) -> int:
        return len(self._queue)

    async def submit(self, inputs: Tensors, rows: int) -> Tensors:
        """Queue one request; RESOURCE_EXHAUSTED when the queue is full."""
        if len(self._queue) >= self.max_queue:
            raise ServingError(Code.RESOURCE_EXHAUSTED, QUEUE_FULL)
        if rows > self._opts.max_batch_size:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Task size {rows} is larger than maximum input batch size "
                f"{self._opts.max_batch_size}",
            )
        task = _Task(inputs, rows, asyncio.get_running_loop().create_future())
        self._queue.append(task)
        self._wakeup.set()
        return await task.future

    def close(self) -> None:
        """Stop once the queue is drained (the servable was unloaded)."""
        self._closed = True
        self._wakeup.set()

    async def _worker(self) -> None:
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = await self._take_batch()
            if batch:
                await self._execute(batch)

    async def _take_batch(self) -> list[_Task]:
        """Wait until a full batch or the first task's timeout, then take up to max rows."""
        deadline = self._queue[0].enqueued + self._opts.batch_timeout_s
        while sum(t.rows for t in self._queue) < self._opts.max_batch_size and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        batch: list[_Task] = []
        rows = 0
        while self._queue and rows + self._queue[0].rows <= self._opts.max_batch_size:
            task = self._queue.popleft()
            if task.future.done():  # cancelled: its deadline passed while queued
                continue
            batch.append(task)
            rows += task.rows
        return batch

    async def _execute(self, batch: list[_Task]) -> None:
        rows = sum(t.rows for t in batch)
        self._on_batch(rows, len(self._queue))
        try:
            outputs = await asyncio.to_thread(self._run_merged, batch)
        except Exception as exc:  # noqa: BLE001 - hand every error to its callers
            for task in batch:
                if not task.future.done():
                    task.future.set_exception(exc)
            return
        for task, out in zip(batch, outputs, strict=True):
            if task.future.done():
                continue
            if isinstance(out, Exception):
                task.future.set_exception(out)
            else:
                task.future.set_result(out)

    def _run_one(self, inputs: Tensors) -> Tensors | Exception:
        try:
            return self._run(inputs)
        except ServingError as exc:
            return exc

    def _run_merged(self, batch: list[_Task]) -> list[Tensors | Exception]:
        if len(batch) == 1:
            return [self._run(batch[0].inputs)]
        try:
            merged = {k: np.concatenate([t.inputs[k] for t in batch]) for k in batch[0].inputs}
        except ValueError:  # shapes beyond dim 0 differ: run one by one
            return [self._run_one(t.inputs) for t in batch]
        try:
            out = self._run(merged)
        except ServingError:  # one bad request must not fail its batch-mates
            return [self._run_one(t.inputs) for t in batch]
        results: list[Tensors | Exception] = []
        start = 0
        for task in batch:
            results.append({k: v[start : start + task.rows] for k, v in out.items()})
            start += task.rows
        return results
