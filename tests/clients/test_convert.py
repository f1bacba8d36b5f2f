"""custom_job_to_status and execution_to_status (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.cloud import aiplatform_v1, run_v2
from google.rpc import status_pb2

from gcpjobs.clients.convert import custom_job_to_status, execution_state, execution_to_status
from gcpjobs.results import JobError
from gcpjobs.states import JobState

NAME = "projects/p/locations/us-central1/customJobs/77"


def test_failed_job() -> None:
    created = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    started = datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)
    ended = datetime(2026, 3, 1, 12, 1, 0, tzinfo=timezone.utc)
    job = aiplatform_v1.CustomJob(
        name=NAME,
        display_name="train-1234abcd",
        state=aiplatform_v1.JobState.JOB_STATE_FAILED,
        create_time=created,
        start_time=started,
        end_time=ended,
        update_time=ended,
        error=status_pb2.Status(code=3, message="The replica workerpool0-0 exited with a non-zero status of 2."),
        labels={"team": "ml", "gcpjobs-submission-id": "abc"},
        web_access_uris={"workerpool0-0": "https://example.test/0"},
    )
    status = custom_job_to_status(job)
    assert status.name == NAME and status.job_id == "77" and status.display_name == "train-1234abcd"
    assert status.state is JobState.FAILED and status.is_terminal
    assert status.create_time == created and status.start_time == started
    assert status.end_time == ended and status.update_time == ended
    assert type(status.create_time) is datetime and status.create_time.tzinfo is not None
    assert status.error == JobError(3, "The replica workerpool0-0 exited with a non-zero status of 2.")
    assert dict(status.labels) == {"team": "ml", "gcpjobs-submission-id": "abc"}
    assert dict(status.web_access_uris) == {"workerpool0-0": "https://example.test/0"}


def test_new_job_has_no_times_and_no_error() -> None:
    status = custom_job_to_status(
        aiplatform_v1.CustomJob(name=NAME, state=aiplatform_v1.JobState.JOB_STATE_QUEUED)
    )
    assert status.state is JobState.QUEUED and not status.is_terminal
    assert (status.start_time, status.end_time, status.error) == (None, None, None)
    assert dict(status.labels) == {}


# ------------------------------------------------------------------- Cloud Run executions

EXECUTION = "projects/p/locations/us-central1/jobs/train/executions/train-x7k2p"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def execution(
    *,
    started: bool = False,
    completed: bool = False,
    condition: str | None = None,
    reason: str | None = None,
    message: str = "",
    **counts: int,
) -> run_v2.Execution:
    conditions = []
    if condition or reason:
        conditions.append(run_v2.Condition(
            type_="Completed", state=condition or "CONDITION_PENDING",
            execution_reason=reason or "EXECUTION_REASON_UNDEFINED", message=message,
        ))
    return run_v2.Execution(
        name=EXECUTION, task_count=counts.pop("task_count", 2), create_time=T0,
        start_time=T0 + timedelta(seconds=1) if started else None,
        completion_time=T0 + timedelta(seconds=9) if completed else None,
        conditions=conditions, labels={"team": "ml"}, **counts,
    )


@pytest.mark.parametrize(
    ("message", "state"),
    [
        (execution(), JobState.PENDING),
        (execution(started=True, running_count=2), JobState.RUNNING),
        (execution(running_count=1), JobState.RUNNING),
        (execution(started=True, reason="CANCELLING"), JobState.CANCELLING),
        (execution(started=True, completed=True, condition="CONDITION_SUCCEEDED",
                   succeeded_count=2), JobState.SUCCEEDED),
        (execution(started=True, completed=True, condition="CONDITION_FAILED",
                   reason="NON_ZERO_EXIT_CODE", failed_count=1), JobState.FAILED),
        (execution(started=True, completed=True, condition="CONDITION_FAILED",
                   reason="CANCELLED", cancelled_count=2), JobState.CANCELLED),
        # No reason given: cancelled tasks and no failed one still read as a cancel.
        (execution(started=True, completed=True, condition="CONDITION_FAILED",
                   cancelled_count=1), JobState.CANCELLED),
        # Completed with no condition at all is not a success.
        (execution(started=True, completed=True), JobState.FAILED),
    ],
)
def test_execution_states(message: run_v2.Execution, state: JobState) -> None:
    assert execution_state(message) is state


def test_failed_execution_carries_the_condition_message_and_counts() -> None:
    status = execution_to_status(execution(
        started=True, completed=True, condition="CONDITION_FAILED", reason="NON_ZERO_EXIT_CODE",
        message="Task train-x7k2p-task1 failed with exit code 3.", failed_count=1,
        succeeded_count=1, retried_count=3,
    ))
    assert status.kind == "cloud-run" and status.display_name == "train-x7k2p"
    assert status.error is not None and "exit code 3" in status.error.message
    assert status.tasks is not None and (status.tasks.failed, status.tasks.retried) == (1, 3)
    assert str(status.tasks) == "1/2 tasks succeeded, 1 failed, 3 retried"
    assert status.end_time == T0 + timedelta(seconds=9) and status.labels == {"team": "ml"}


def test_cancelled_execution_without_message_says_so() -> None:
    status = execution_to_status(execution(
        started=True, completed=True, condition="CONDITION_FAILED", reason="CANCELLED",
        cancelled_count=2,
    ))
    assert status.error is not None and status.error.code == 1
    assert "cancelled" in status.error.message


def test_running_execution_has_no_error_and_no_end() -> None:
    status = execution_to_status(execution(started=True, running_count=2))
    assert status.error is None and status.end_time is None and not status.is_terminal
