"""What a client hands back: a job's status at one moment, and its final result.

Both are plain frozen dataclasses built from the service's reply by the client layer, so that
watchers, the CLI and integrations never touch protos.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from gcpjobs.states import JobState


@dataclass(frozen=True)
class JobError:
    """The `google.rpc.Status` the service put on a failed or cancelled job."""

    code: int
    message: str


@dataclass(frozen=True)
class TaskCounts:
    """A Cloud Run execution's tasks: how many there are and where they stand."""

    task_count: int
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0

    def __str__(self) -> str:
        parts = [f"{self.succeeded}/{self.task_count} tasks succeeded"]
        for count, word in ((self.running, "running"), (self.failed, "failed"),
                            (self.cancelled, "cancelled"), (self.retried, "retried")):
            if count:
                parts.append(f"{count} {word}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Container:
    """The container a job runs (a Vertex job's primary replica, a Cloud Run execution's
    first container), as the service holds it. `env` has the plain values only: secret
    references are not values."""

    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class JobStatus:
    """One observation of a job: a Vertex custom job, or a Cloud Run job's execution."""

    name: str  # full resource name: projects/P/locations/L/customJobs/ID
    display_name: str
    state: JobState
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    update_time: datetime | None = None
    error: JobError | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    web_access_uris: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    kind: str = "vertex"  # or "cloud-run": then `name` is the execution's
    tasks: TaskCounts | None = None  # Cloud Run executions only

    @property
    def job_id(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal


@dataclass(frozen=True)
class JobResult:
    """How a job ended, with the times a user asks about first."""

    status: JobStatus

    @property
    def name(self) -> str:
        return self.status.name

    @property
    def state(self) -> JobState:
        return self.status.state

    @property
    def succeeded(self) -> bool:
        return self.status.state is JobState.SUCCEEDED

    @property
    def error(self) -> JobError | None:
        return self.status.error

    @property
    def queued_duration(self) -> timedelta | None:
        """Time from creation to first RUNNING (or to the end, for a job that never ran)."""
        s = self.status
        until = s.start_time or s.end_time
        return until - s.create_time if (until and s.create_time) else None

    @property
    def run_duration(self) -> timedelta | None:
        s = self.status
        return s.end_time - s.start_time if (s.end_time and s.start_time) else None

    @property
    def exit_code(self) -> int:
        """The process exit code a CLI should use: 0 only for SUCCEEDED."""
        return 0 if self.succeeded else 1
