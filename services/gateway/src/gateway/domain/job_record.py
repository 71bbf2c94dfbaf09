"""An ingest job's record: what the store keeps and what a poll returns (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_ERRORS = 50  # per job: a bad 10k-line upload must not make a 10k-entry record
RUNNING, INTERRUPTED = "running", "interrupted"  # others: succeeded | partial | failed


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


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

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "progress": (self.done + self.failed) / self.total if self.total else 1.0,
            "errors": self.errors[:MAX_ERRORS],
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
