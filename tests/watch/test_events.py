"""How a state change reads when printed (`on_change=print`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gcpjobs.results import JobStatus
from gcpjobs.states import JobState
from gcpjobs.watch.events import StateChange

NAME = "projects/p/locations/us-central1/customJobs/123"


def change(previous: JobState | None, at: datetime | None) -> StateChange:
    observed = datetime(2026, 11, 24, 20, 0, 0, 500_000, tzinfo=timezone.utc)
    status = JobStatus(name=NAME, display_name="d", state=JobState.RUNNING)
    return StateChange(NAME, previous, JobState.RUNNING, at, observed, status)


def test_a_change_prints_as_one_line_with_the_server_time_in_utc() -> None:
    at = datetime(2026, 11, 24, 21, 49, 31, 913_246, tzinfo=timezone(timedelta(hours=2)))
    assert str(change(JobState.PENDING, at)) == f"2026-11-24T19:49:31.913Z PENDING -> RUNNING {NAME}"


def test_a_first_observation_without_server_time_uses_when_it_was_seen() -> None:
    assert str(change(None, None)) == f"2026-11-24T20:00:00.500Z RUNNING {NAME}"
