"""custom_job_to_status (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

from google.cloud import aiplatform_v1
from google.rpc import status_pb2

from gcpjobs.clients.convert import custom_job_to_status
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
