"""What a watcher reports: one job moving from one state to another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from gcpjobs.results import JobStatus
from gcpjobs.states import JobState


@dataclass(frozen=True)
class StateChange:
    """`name` was seen in `current` (after `previous`; None for the first observation).

    `at` is the server's `update_time` of the observation that showed the change (None if the
    server sent none); `observed_at` is when this process saw it (aware, UTC).
    """

    name: str
    previous: JobState | None
    current: JobState
    at: datetime | None
    observed_at: datetime
    status: JobStatus

    @classmethod
    def seen(cls, last: JobStatus | None, status: JobStatus) -> StateChange:
        """`status` observed now, after `last` (None for the first observation)."""
        return cls(
            name=status.name,
            previous=None if last is None else last.state,
            current=status.state,
            at=status.update_time,
            observed_at=datetime.now(timezone.utc),
            status=status,
        )

    @property
    def is_terminal(self) -> bool:
        return self.current.is_terminal

    def __str__(self) -> str:
        """One log line: `2026-11-24T19:49:31.913Z QUEUED -> SUCCEEDED projects/.../123`."""
        moment = (self.at or self.observed_at).astimezone(timezone.utc)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        move = f"{self.previous} -> {self.current}" if self.previous else str(self.current)
        return f"{stamp} {move} {self.name}"
