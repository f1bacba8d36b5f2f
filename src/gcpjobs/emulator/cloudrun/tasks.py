"""Cloud Run v2 `Task` resources, built from an execution and what the runner saw of each task.

A task is `{execution}/tasks/{execution id}-task{index}` (Cloud Run names its tasks so: its
failure messages read "Task my-job-x7k2p-task0 failed ..."). Choices where the real service is
not documented (unverified):

* `job` and `execution` are ids, as `Execution.job` is; labels, annotations and the task
  template fields (containers, volumes, max_retries, timeout, service account, ...) are the
  execution's.
* `conditions` are "Completed" (PENDING until the task ends, then SUCCEEDED, or FAILED with
  execution_reason NON_ZERO_EXIT_CODE or CANCELLED) and "Started"; `retried` counts the
  attempts after the first; `last_attempt_result` is the last attempt that ended: status OK
  with exit_code 0, or DEADLINE_EXCEEDED (past the task timeout), CANCELLED, or ABORTED with the
  reason, and its exit code or terminating signal.
* A task that never started is not recorded: it reads as pending while its execution runs and
  as cancelled (completed when the execution did) once the execution has ended.
* `log_uri` is the `file://` URI of the task's last attempt log (the execution's log directory
  before it starts); `uid` is derived from the execution's, so it stays the same on every read.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from google.cloud import run_v2
from google.cloud.run_v2 import Condition
from google.rpc import code_pb2, status_pb2

from gcpjobs.emulator.cloudrun.runner import AttemptResult, TaskState, TaskStatus

CState = Condition.State
Reason = Condition.ExecutionReason
_ENDED = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)


def task_id(execution_name: str, index: int) -> str:
    return f"{execution_name.rsplit('/', 1)[-1]}-task{index}"


def task_name(execution_name: str, index: int) -> str:
    return f"{execution_name}/tasks/{task_id(execution_name, index)}"


def build_task(execution: run_v2.Execution, index: int, state: TaskState | None) -> run_v2.Task:
    """The Task as a client reads it (without its etag: the service stamps that)."""
    if state is None:  # never started: pending, or cancelled with its execution
        state = (TaskState(index, TaskStatus.CANCELLED, completion_time=execution.completion_time)
                 if "completion_time" in execution else TaskState(index))
    template = execution.template
    task = run_v2.Task(
        name=task_name(execution.name, index),
        uid=str(uuid.uuid5(uuid.UUID(execution.uid), str(index))),
        generation=1,
        observed_generation=1,
        labels=dict(execution.labels),
        annotations=dict(execution.annotations),
        create_time=execution.create_time,
        update_time=state.completion_time or state.start_time or execution.create_time,
        job=execution.job,
        execution=execution.name.rsplit("/", 1)[-1],
        containers=list(template.containers),
        volumes=list(template.volumes),
        max_retries=template.max_retries,
        timeout=template.timeout,
        service_account=template.service_account,
        execution_environment=template.execution_environment,
        encryption_key=template.encryption_key,
        index=index,
        retried=state.attempt,
        reconciling=state.status not in _ENDED,
        log_uri=_log_uri(execution, state),
        gpu_zonal_redundancy_disabled=template.gpu_zonal_redundancy_disabled,
    )
    if "vpc_access" in template:
        task.vpc_access = template.vpc_access
    if "node_selector" in template:
        task.node_selector = template.node_selector
    if state.start_time is not None:
        task.scheduled_time = state.start_time
        task.start_time = state.start_time
    if state.completion_time is not None:
        task.completion_time = state.completion_time
    if state.last_result is not None:
        task.last_attempt_result = _attempt_result(state.last_result, state.status)
    task.conditions = _conditions(state, execution.create_time)
    return task


def _log_uri(execution: run_v2.Execution, state: TaskState) -> str:
    if state.start_time is None:
        return str(execution.log_uri)
    return f"{execution.log_uri.rstrip('/')}/task-{state.index}-attempt-{state.attempt}.jsonl"


def _attempt_result(result: AttemptResult, status: TaskStatus) -> run_v2.TaskAttemptResult:
    if result.succeeded:
        code = code_pb2.OK
    elif result.timed_out:
        code = code_pb2.DEADLINE_EXCEEDED
    elif status == TaskStatus.CANCELLED:
        code = code_pb2.CANCELLED
    else:
        code = code_pb2.ABORTED
    attempt = run_v2.TaskAttemptResult(status=status_pb2.Status(code=code, message=result.message))
    if result.exit_code is not None:
        attempt.exit_code = result.exit_code
    elif result.term_signal is not None:
        attempt.term_signal = result.term_signal
    return attempt


def _conditions(state: TaskState, created: datetime) -> list[Condition]:
    started = Condition(type_="Started", last_transition_time=state.start_time or created,
                        state=CState.CONDITION_SUCCEEDED if state.start_time else CState.CONDITION_PENDING)
    completed = Condition(type_="Completed", last_transition_time=state.completion_time or created,
                          state=CState.CONDITION_PENDING)
    if state.status == TaskStatus.SUCCEEDED:
        completed.state = CState.CONDITION_SUCCEEDED
        completed.message = "The task completed successfully."
    elif state.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        completed.state = CState.CONDITION_FAILED
        completed.severity = Condition.Severity.ERROR
        last = state.last_result
        completed.message = last.message if last is not None and last.message else "The task was cancelled."
        if state.status == TaskStatus.CANCELLED:
            completed.execution_reason = Reason.CANCELLED
        elif last is not None and last.exit_code is not None:  # not a timeout or a signal
            completed.execution_reason = Reason.NON_ZERO_EXIT_CODE
    return [completed, started]


def stopped_task(execution: run_v2.Execution, task: run_v2.Task, now: datetime) -> run_v2.Task:
    """A task the runner left unfinished (the emulator stopped, or failed inside), cancelled
    now, with what it knew of the task's last attempt."""
    state = TaskState(task.index, TaskStatus.CANCELLED, task.retried,
                      start_time=task.start_time if "start_time" in task else None,
                      completion_time=now)
    stopped = build_task(execution, task.index, state)
    if "last_attempt_result" in task:
        stopped.last_attempt_result = task.last_attempt_result
    return stopped
