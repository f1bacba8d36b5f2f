"""Job states as gcpjobs reports them, the same words for Vertex AI and Cloud Run.

Vertex's `JobState` enum names are `JOB_STATE_<NAME>`; ours drop the prefix so that
events, results and the CLI read naturally (`RUNNING`, `SUCCEEDED`).
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    UNSPECIFIED = "UNSPECIFIED"
    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"
    EXPIRED = "EXPIRED"
    UPDATING = "UPDATING"
    PARTIALLY_SUCCEEDED = "PARTIALLY_SUCCEEDED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @classmethod
    def from_vertex(cls, value: int | str) -> JobState:
        """Map `aiplatform_v1.JobState` (an int or its `JOB_STATE_*` name) to ours."""
        if isinstance(value, int):
            return _VERTEX_BY_NUMBER.get(int(value), cls.UNSPECIFIED)
        name = str(value).rsplit(".", 1)[-1].removeprefix("JOB_STATE_")
        return cls.__members__.get(name, cls.UNSPECIFIED)

    def to_vertex(self) -> int:
        return _VERTEX_NUMBER[self]

    def __str__(self) -> str:
        return self.value


# aiplatform_v1.JobState numbers, copied so that this module needs no Google import.
_VERTEX_NUMBER: dict[JobState, int] = {
    JobState.UNSPECIFIED: 0,
    JobState.QUEUED: 1,
    JobState.PENDING: 2,
    JobState.RUNNING: 3,
    JobState.SUCCEEDED: 4,
    JobState.FAILED: 5,
    JobState.CANCELLING: 6,
    JobState.CANCELLED: 7,
    JobState.PAUSED: 8,
    JobState.EXPIRED: 9,
    JobState.UPDATING: 10,
    JobState.PARTIALLY_SUCCEEDED: 11,
}
_VERTEX_BY_NUMBER = {number: state for state, number in _VERTEX_NUMBER.items()}

# The official SDK treats PAUSED as complete too; a CustomJob is not seen to reach it, but a
# watcher that waited forever on one would be worse than one that stops.
TERMINAL_STATES = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.EXPIRED,
        JobState.PAUSED,
        JobState.PARTIALLY_SUCCEEDED,
    }
)
