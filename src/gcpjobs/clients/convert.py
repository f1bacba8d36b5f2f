"""Service replies -> `JobStatus`: a Vertex `CustomJob`, or a Cloud Run `Execution`.

Nothing proto-typed leaves this module, so watchers, the CLI and integrations never see
protos. Only the fields read are touched, so no Google module is imported here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from gcpjobs.results import Container, JobError, JobStatus, TaskCounts
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


def _status(message: Any, *, end_time: Any, **fields: Any) -> JobStatus:
    """A JobStatus of `message` (a CustomJob or an Execution): the fields both spell alike
    (name, creation, start and update times, labels) read from it, its end time `end_time`,
    and the kind's own `fields`."""
    return JobStatus(
        name=str(message.name),
        create_time=aware_datetime(message.create_time),
        start_time=aware_datetime(message.start_time),
        end_time=aware_datetime(end_time),
        update_time=aware_datetime(message.update_time),
        labels=MappingProxyType(dict(message.labels)),
        **fields,
    )


def custom_job_to_status(custom_job: Any) -> JobStatus:
    """One observation of a job, with nothing proto-typed left in it."""
    error = None
    # `error` is "only populated when job's state is JOB_STATE_FAILED or JOB_STATE_CANCELLED".
    if "error" in custom_job and (custom_job.error.code or custom_job.error.message):
        error = JobError(code=int(custom_job.error.code), message=str(custom_job.error.message))
    return _status(
        custom_job,
        end_time=custom_job.end_time,
        display_name=str(custom_job.display_name),
        state=JobState.from_vertex(int(custom_job.state)),
        error=error,
        web_access_uris=MappingProxyType(dict(custom_job.web_access_uris)),
        kind="vertex",
    )


# google.rpc.Code numbers put on a Cloud Run execution's error: the Execution message carries
# no status of its own, only conditions with a reason and a message.
_CODE_CANCELLED = 1
_CODE_UNKNOWN = 2


def _completed_condition(execution: Any) -> Any:
    for condition in execution.conditions:
        if condition.type_ == "Completed":
            return condition
    return None


def execution_state(execution: Any) -> JobState:
    """Where a Cloud Run execution stands, in the states Vertex jobs use.

    Not yet complete: CANCELLING while a cancel is under way, RUNNING once started, PENDING
    before. Complete (`completion_time` set): the "Completed" condition decides, a cancel
    reason making it CANCELLED.
    """
    condition = _completed_condition(execution)
    reason = condition.execution_reason.name if condition is not None else ""
    if aware_datetime(execution.completion_time) is None:
        if reason == "CANCELLING":
            return JobState.CANCELLING
        if aware_datetime(execution.start_time) is not None or execution.running_count:
            return JobState.RUNNING
        return JobState.PENDING
    if condition is not None and condition.state.name == "CONDITION_SUCCEEDED":
        return JobState.SUCCEEDED
    if reason == "CANCELLED" or (execution.cancelled_count and not execution.failed_count):
        return JobState.CANCELLED
    return JobState.FAILED


def execution_to_status(execution: Any) -> JobStatus:
    """One observation of a Cloud Run execution (a GetExecution / ListExecutions item)."""
    state = execution_state(execution)
    error = None
    if state in (JobState.FAILED, JobState.CANCELLED):
        condition = _completed_condition(execution)
        message = str(condition.message) if condition is not None and condition.message else ""
        if state is JobState.CANCELLED:
            error = JobError(code=_CODE_CANCELLED, message=message or "The execution was cancelled.")
        else:
            error = JobError(
                code=_CODE_UNKNOWN,
                message=message or f"{execution.failed_count} of {execution.task_count} tasks failed.",
            )
    return _status(
        execution,
        end_time=execution.completion_time,
        display_name=str(execution.name).rsplit("/", 1)[-1],
        state=state,
        error=error,
        kind="cloud-run",
        tasks=TaskCounts(
            task_count=int(execution.task_count),
            running=int(execution.running_count),
            succeeded=int(execution.succeeded_count),
            failed=int(execution.failed_count),
            cancelled=int(execution.cancelled_count),
            retried=int(execution.retried_count),
        ),
    )


def container_of(spec: Any, image: str) -> Container:
    """A Vertex ContainerSpec or a Cloud Run Container as a `Container` (plain env only: a
    Cloud Run variable whose value comes from a secret has no value here)."""
    env = {variable.name: variable.value for variable in spec.env
           if not _has_source(variable)}
    return Container(image=image, command=tuple(spec.command), args=tuple(spec.args),
                     env=MappingProxyType(env))


def _has_source(variable: Any) -> bool:
    try:
        return "value_source" in variable
    except AttributeError:  # proto-plus, for a message type without the field (Vertex's)
        return False
