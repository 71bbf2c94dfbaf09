"""An ingest job's record (what the store keeps and a poll returns) and the updates a store
applies to it; no I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_ERRORS = 50  # per job: a bad 10k-line upload must not make a 10k-entry record
RUNNING, INTERRUPTED = "running", "interrupted"  # others: succeeded | partial | failed


@dataclass(frozen=True)
class JobUpdate:
    """One write to a job record: counts to add, errors to append (the first ``MAX_ERRORS``
    are kept), a state to set. Every write renews the heartbeat; ``updated_at`` moves only
    when the write changes something, so the empty update is a bare heartbeat."""

    done: int = 0
    failed: int = 0
    errors: Sequence[dict[str, str]] = ()
    state: str | None = None

    @property
    def changes(self) -> bool:
        return bool(self.done or self.failed or self.errors) or self.state is not None

    def then(self, later: JobUpdate) -> JobUpdate:
        """This update and ``later`` as one write (progress kept while the store is down)."""
        return JobUpdate(
            self.done + later.done,
            self.failed + later.failed,
            (*self.errors, *later.errors)[:MAX_ERRORS],
            self.state if later.state is None else later.state,
        )


HEARTBEAT = JobUpdate()


@dataclass
class Job:
    id: str
    total: int
    done: int = 0
    failed: int = 0
    state: str = RUNNING
    errors: list[dict[str, str]] = field(default_factory=list)
    created_at: float = 0.0  # wall-clock seconds: compared across replicas
    updated_at: float = 0.0
    heartbeat_at: float = 0.0
    owner: str = ""  # the replica running it (for operators; not in the JSON)

    @property
    def progress(self) -> float:
        return (self.done + self.failed) / self.total if self.total else 1.0

    def apply(self, update: JobUpdate, now: float) -> None:
        """``update`` written at ``now``, as every store does it."""
        self.done += update.done
        self.failed += update.failed
        self.errors.extend(update.errors[: MAX_ERRORS - len(self.errors)])
        self.heartbeat_at = now
        if update.changes:
            self.updated_at = now
        if update.state is not None:
            self.state = update.state
