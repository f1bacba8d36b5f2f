"""What a watcher reports: one job moving from one state to another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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

    @property
    def is_terminal(self) -> bool:
        return self.current.is_terminal
