"""Job states, shared by the job store, the training queue and the OpenAPI spec."""

from __future__ import annotations

import enum

__all__ = ["FINAL_STATES", "JobStatus"]


class JobStatus(enum.StrEnum):
    """Life cycle of a training job: queued → running → done | error | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


FINAL_STATES = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED})
