"""`aiplatform_v1.CustomJob` (a GetCustomJob / ListCustomJobs item) -> `JobStatus`."""

from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from gcpjobs.results import JobError, JobStatus
from gcpjobs.states import JobState


def aware_datetime(value: Any) -> datetime | None:
    """A proto-plus timestamp (`DatetimeWithNanoseconds`, or None when unset) as a plain
    timezone-aware UTC datetime, so that results compare and serialise like any datetime."""
    if value is None or not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc)
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond,
        tzinfo=timezone.utc,
    )


def custom_job_to_status(custom_job: Any) -> JobStatus:
    """One observation of a job, with nothing proto-typed left in it."""
    error = None
    # `error` is "only populated when job's state is JOB_STATE_FAILED or JOB_STATE_CANCELLED".
    if "error" in custom_job and (custom_job.error.code or custom_job.error.message):
        error = JobError(code=int(custom_job.error.code), message=str(custom_job.error.message))
    return JobStatus(
        name=str(custom_job.name),
        display_name=str(custom_job.display_name),
        state=JobState.from_vertex(int(custom_job.state)),
        create_time=aware_datetime(custom_job.create_time),
        start_time=aware_datetime(custom_job.start_time),
        end_time=aware_datetime(custom_job.end_time),
        update_time=aware_datetime(custom_job.update_time),
        error=error,
        labels=MappingProxyType(dict(custom_job.labels)),
        web_access_uris=MappingProxyType(dict(custom_job.web_access_uris)),
        kind="vertex",
    )
