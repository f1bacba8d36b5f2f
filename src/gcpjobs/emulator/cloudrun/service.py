"""Cloud Run Admin API v2 `Jobs` and `Executions`, free of any transport.

Methods take the official request messages and return the official responses (a
`google.longrunning.Operation` where the real API returns one, reference §4.1); a refusal is a
`ServiceError`. Choices where the real service is not documented, or where the emulator differs:

* **Operations.** CreateJob, UpdateJob and DeleteJob operations are done when returned (the
  job is ready at once: nothing is deployed). RunJob's operation (metadata: the Execution)
  completes when the execution completes: its response is the final Execution when it
  succeeded; a failed execution ends it with an error (code 9 FAILED_PRECONDITION, the
  execution's failure message) and a cancelled one with code 1 CANCELLED, so
  `operation.result()` waits for the run and raises unless it succeeded. (gcloud's
  `jobs execute` without `--wait` returns once the execution has started, by watching the
  execution, not the operation.) CancelExecution's operation completes once every task has
  stopped, with the cancelled Execution. DeleteExecution's is done when returned. The error
  codes of a failed RunJob operation are the emulator's choice (unverified).
* **Jobs** get `uid` (UUID4), `generation` (1, +1 per update), `observed_generation`,
  `terminal_condition` {type "Ready", CONDITION_SUCCEEDED}, an `etag`, and the template
  defaults the real service fills in: task_count 1, max_retries 3, timeout 600s. Deleting a
  job with an execution still running is FAILED_PRECONDITION (cancel it first); deleting a job
  deletes its executions.
* **Executions** are named `{job}-{5 lowercase letters or digits}`; their labels are the job's
  labels overlaid with the job's `template.labels`; `conditions` are "Completed",
  "ResourcesAvailable" and "Started" (Completed: PENDING while running, RECONCILING with
  execution_reason CANCELLING while a cancel stops the tasks, then SUCCEEDED or FAILED with
  execution_reason NON_ZERO_EXIT_CODE / CANCELLED); `log_uri` is a `file://` URI of the
  execution's local log directory. Deleting a running execution is FAILED_PRECONDITION.
* **Tasks** (`Tasks.GetTask`, `Tasks.ListTasks`): one per index of an execution, named
  `{execution}/tasks/{execution id}-task{index}`, built by tasks.py from what the runner
  reports; ListTasks lists them by index.
* Lists are newest first (create_time, then name, descending), paged as in paging.py;
  `show_deleted` is ignored (deleted records are gone).
* An execution that was running when the emulator stopped or crashed is failed on the next
  start, with a message that says so; its leftover processes are killed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
import string
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from google.cloud import run_v2
from google.cloud.run_v2 import Condition, ExecutionReference
from google.longrunning import operations_pb2
from google.rpc import code_pb2, status_pb2

from gcpjobs.emulator import clock, limits, names, paging
from gcpjobs.emulator.cloudrun.runner import (
    STOPPED_MESSAGE,
    Ending,
    ExecutionRunner,
    Result,
    TaskCounts,
    TaskLauncher,
    TaskState,
    execution_dir,
)
from gcpjobs.emulator.cloudrun.secrets import SecretStore
from gcpjobs.emulator.cloudrun.tasks import build_task, stopped_task
from gcpjobs.emulator.cloudrun.validation import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    FieldProblem,
    execution_id_problem,
    format_problems,
    job_id_problem,
    validate_job,
    validate_overrides,
)
from gcpjobs.emulator.config import Timings
from gcpjobs.emulator.errors import ServiceError, invalid
from gcpjobs.emulator.executor import JobEnvironment, stop_leftovers
from gcpjobs.emulator.messages import copy, pack
from gcpjobs.emulator.operations import OperationRegistry, new_operation
from gcpjobs.emulator.store import JobStore
from gcpjobs.emulator.threads import AdvanceError

JOB_KIND = "run.v2.Job"
EXECUTION_KIND = "run.v2.Execution"
TASK_KIND = "run.v2.Task"
RESTARTED_MESSAGE = (
    "The gcpjobs emulator restarted while this execution was running; its tasks were stopped "
    "and the execution cannot be resumed."
)

CState = Condition.State
Reason = Condition.ExecutionReason
Completion = ExecutionReference.CompletionStatus

SERVICE = "Cloud Run"  # in "Location ... is not a Cloud Run region"
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
# Fields of a Job the server owns: whatever a client sends in them is ignored.
_JOB_OUTPUT_ONLY = (
    "uid", "generation", "create_time", "update_time", "delete_time", "expire_time", "creator",
    "last_modifier", "observed_generation", "terminal_condition", "conditions",
    "execution_count", "latest_created_execution", "reconciling", "satisfies_pzs", "etag",
)


def _refuse(problems: list[FieldProblem]) -> None:
    if problems:
        raise invalid(format_problems(problems))


def _etag(message: Any) -> str:
    unstamped = copy(message)
    unstamped.etag = ""
    digest = hashlib.sha256(type(message).serialize(unstamped)).digest()[:15]
    return '"' + base64.urlsafe_b64encode(digest).decode() + '"'


def _condition(
    type_: str,
    state: Condition.State,
    message: str = "",
    reason: Condition.ExecutionReason | None = None,
) -> Condition:
    condition = Condition(type_=type_, state=state, message=message, last_transition_time=clock.now())
    if reason is not None:
        condition.execution_reason = reason
    if state == CState.CONDITION_FAILED:
        condition.severity = Condition.Severity.ERROR
    return condition


def _completed(execution: run_v2.Execution) -> bool:
    return "completion_time" in execution


def parse_job_name(name: str, *, any_job: bool = False) -> tuple[str, str, str]:
    """`projects/P/locations/L/jobs/J` → (P, L, J), all checked; `any_job` also takes `-` for
    J (ListExecutions across the jobs of a location)."""
    project, location, job_id = names.split_name(
        name, ("projects", "locations", "jobs"), what="job name",
        pattern="projects/{project}/locations/{location}/jobs/{job}",
    )
    names.check_project_and_location(project, location, service=SERVICE)
    if not (any_job and job_id == "-"):
        _check_id(job_id_problem(job_id))
    return project, location, job_id


def parse_execution_name(name: str) -> tuple[str, str, str, str]:
    """`projects/P/locations/L/jobs/J/executions/E` → (P, L, J, E), all checked."""
    project, location, job_id, execution_id = names.split_name(
        name, ("projects", "locations", "jobs", "executions"), what="execution name",
        pattern="projects/{project}/locations/{location}/jobs/{job}/executions/{execution}",
    )
    names.check_project_and_location(project, location, service=SERVICE)
    _check_id(job_id_problem(job_id))
    _check_id(execution_id_problem(execution_id))
    return project, location, job_id, execution_id


def parse_task_name(name: str) -> tuple[str, int]:
    """`.../jobs/J/executions/E/tasks/E-taskN` → (the execution's name, N), all checked."""
    project, location, job_id, execution_id, task = names.split_name(
        name, ("projects", "locations", "jobs", "executions", "tasks"), what="task name",
        pattern="projects/{project}/locations/{location}/jobs/{job}/executions/{execution}/tasks/{task}",
    )
    names.check_project_and_location(project, location, service=SERVICE)
    _check_id(job_id_problem(job_id))
    _check_id(execution_id_problem(execution_id))
    owner, index = names.split_task_id(task)
    if owner != execution_id:  # well formed, but no task of this execution
        raise _not_found("TASK", name)
    return name.split("/tasks/")[0], index


def _check_id(problem: str | None) -> None:
    if problem is not None:
        raise invalid(problem)


def _list_scope(request: Any) -> str:
    """What a page token is bound to: the parent and the kind of list, so that a ListJobs token
    is refused by a Vertex ListCustomJobs of the same parent (and the other way round)."""
    return f"{type(request).__name__}|{request.parent}"


def _not_found(kind: str, name: str) -> ServiceError:
    parts = name.split("/")
    return ServiceError(
        grpc.StatusCode.NOT_FOUND,
        f"Resource '{parts[-1]}' of kind '{kind}' in region '{parts[3]}' in project "
        f"'{parts[1]}' does not exist.",
    )


class CloudRunService:
    """All Cloud Run jobs and executions of one emulator, in memory, written through to SQLite."""

    def __init__(
        self,
        *,
        data_dir: Path,
        store: JobStore,
        operations: OperationRegistry,
        timings: Callable[[], Timings],
        job_environment: JobEnvironment | None = None,
    ) -> None:
        self.data_dir = data_dir
        self._store = store
        self._operations = operations
        self.job_environment = job_environment or JobEnvironment(data_dir)
        self._lock = threading.RLock()
        self._jobs: dict[str, run_v2.Job] = {}
        self._executions: dict[str, run_v2.Execution] = {}
        # The tasks the runner has reported: execution name → index → Task.
        self._tasks: dict[str, dict[int, run_v2.Task]] = {}
        # Operations that finish when an execution does: execution name → [(operation, kind)].
        self._waiting: dict[str, list[tuple[str, str]]] = {}
        self.secrets = SecretStore(data_dir)
        self.runner = ExecutionRunner(sink=self, timings=timings)
        self._load()

    # ---------------------------------------------------------------------------------- Jobs

    def create_job(self, request: run_v2.CreateJobRequest) -> operations_pb2.Operation:
        project, location = names.location_name(request.parent, service=SERVICE)
        _check_id(job_id_problem(request.job_id))
        limits.check_request_size(request)
        _refuse(validate_job(request.job))
        name = f"{request.parent}/jobs/{request.job_id}"
        now = clock.now()
        with self._lock:
            if name in self._jobs:
                raise ServiceError(
                    grpc.StatusCode.ALREADY_EXISTS, f"Resource '{request.job_id}' already exists."
                )
            job = self._stamp_new_job(request.job, name, now)
            if not request.validate_only:
                self._put_job(job)
        return self._done(project, location, job, job, now)

    def get_job(self, request: run_v2.GetJobRequest) -> run_v2.Job:
        return self._job(request.name)

    def list_jobs(self, request: run_v2.ListJobsRequest) -> run_v2.ListJobsResponse:
        names.location_name(request.parent, service=SERVICE)
        prefix = request.parent + "/jobs/"
        with self._lock:
            jobs = [job for name, job in self._jobs.items() if name.startswith(prefix)]
        page = self._page(jobs, request)
        return run_v2.ListJobsResponse(jobs=page.items, next_page_token=page.next_page_token)

    def locations(self, project: str) -> list[str]:
        """The locations that hold jobs of `project`: what the v1 API's global endpoint spans."""
        with self._lock:
            return sorted({name.split("/")[3] for name in self._jobs
                           if name.split("/")[1] == project})

    def update_job(self, request: run_v2.UpdateJobRequest) -> operations_pb2.Operation:
        project, location, job_id = parse_job_name(request.job.name)
        limits.check_request_size(request)
        with self._lock:
            current = self._jobs.get(request.job.name)
        if current is None and request.allow_missing:
            return self.create_job(run_v2.CreateJobRequest(
                parent=f"projects/{project}/locations/{location}", job=request.job, job_id=job_id,
                validate_only=request.validate_only,
            ))
        _refuse(validate_job(request.job))
        now = clock.now()
        with self._lock:
            current = self._job(request.job.name)
            self._check_etag(request.job.etag, current)
            job = self._stamp_new_job(request.job, current.name, current.create_time)
            job.uid = current.uid
            job.generation = current.generation + 1
            job.observed_generation = job.generation
            job.update_time = now
            job.execution_count = current.execution_count
            if "latest_created_execution" in current:
                job.latest_created_execution = current.latest_created_execution
            job.etag = _etag(job)
            if not request.validate_only:
                self._put_job(job)
        return self._done(project, location, job, job, now)

    def delete_job(self, request: run_v2.DeleteJobRequest) -> operations_pb2.Operation:
        project, location, _ = parse_job_name(request.name)
        now = clock.now()
        with self._lock:
            job = self._job(request.name)
            self._check_etag(request.etag, job)
            executions = [e for e in self._executions.values() if e.name.startswith(job.name + "/")]
            running = [e.name.rsplit("/", 1)[-1] for e in executions if not _completed(e)]
            if running:
                raise ServiceError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Job '{job.name.rsplit('/', 1)[-1]}' has running executions "
                    f"({', '.join(sorted(running))}); cancel them and wait until they have "
                    "ended before deleting the job.",
                )
            deleted = copy(job)
            deleted.delete_time = now
            if not request.validate_only:
                for execution in executions:
                    self._drop_execution(execution.name)
                del self._jobs[job.name]
                self._store.delete_resource(job.name)
        return self._done(project, location, deleted, deleted, now)

    def run_job(self, request: run_v2.RunJobRequest) -> operations_pb2.Operation:
        project, location, _ = parse_job_name(request.name)
        limits.check_request_size(request)
        now = clock.now()
        with self._lock:
            job = self._job(request.name)
            self._check_etag(request.etag, job)
            _refuse(validate_overrides(request.overrides, job))
            execution = self._new_execution(job, request.overrides, now)
            if request.validate_only:
                return self._done(project, location, execution, execution, now)
            self._put_execution(execution)
            updated = copy(job)
            updated.execution_count = job.execution_count + 1
            updated.latest_created_execution = run_v2.ExecutionReference(
                name=execution.name, create_time=now,
                completion_status=Completion.EXECUTION_PENDING,
            )
            updated.etag = _etag(updated)
            self._put_job(updated)
            operation = self._pending(project, location, execution, now)
            self._waiting[execution.name] = [(operation.name, "run")]
        try:
            self.runner.submit(TaskLauncher(execution, execution_dir(self.data_dir, execution.name), self.secrets,
                                           self.job_environment))
        except RuntimeError:  # a reset or shutdown is under way: the execution never starts
            self.execution_progress(execution.name, TaskCounts(cancelled=execution.task_count),
                                    started=False, result=Result(Ending.STOPPED, STOPPED_MESSAGE))
            raise ServiceError(grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.") from None
        return operation

    # ---------------------------------------------------------------------------- Executions

    def get_execution(self, request: run_v2.GetExecutionRequest) -> run_v2.Execution:
        return self._execution(request.name)

    def list_executions(self, request: run_v2.ListExecutionsRequest) -> run_v2.ListExecutionsResponse:
        project, location, job_id = parse_job_name(request.parent, any_job=True)
        prefix = f"projects/{project}/locations/{location}/jobs/"
        with self._lock:
            found = [
                e for name, e in self._executions.items()
                if name.startswith(prefix) and (job_id == "-" or e.job == job_id)
            ]
        page = self._page(found, request)
        return run_v2.ListExecutionsResponse(executions=page.items, next_page_token=page.next_page_token)

    def cancel_execution(self, request: run_v2.CancelExecutionRequest) -> operations_pb2.Operation:
        project, location = self._execution_location(request.name)
        now = clock.now()
        with self._lock:
            execution = self._execution(request.name)
            self._check_etag(request.etag, execution)
            if _completed(execution):
                raise ServiceError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Execution '{execution.name.rsplit('/', 1)[-1]}' has already completed; "
                    "only a running execution can be cancelled.",
                )
            if request.validate_only:
                return self._pending(project, location, execution, now, record=False)
            updated = copy(execution)
            self._set_condition(updated, _condition(
                "Completed", CState.CONDITION_RECONCILING, "The execution is being cancelled.",
                Reason.CANCELLING,
            ))
            updated.update_time = now
            self._put_execution(updated)
            operation = self._pending(project, location, updated, now)
            self._waiting.setdefault(execution.name, []).append((operation.name, "cancel"))
        self.runner.cancel(request.name)
        return operation

    def delete_execution(self, request: run_v2.DeleteExecutionRequest) -> operations_pb2.Operation:
        project, location = self._execution_location(request.name)
        now = clock.now()
        with self._lock:
            execution = self._execution(request.name)
            self._check_etag(request.etag, execution)
            if not _completed(execution):
                raise ServiceError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Execution '{execution.name.rsplit('/', 1)[-1]}' is still running; cancel it "
                    "and wait until it has ended before deleting it.",
                )
            deleted = copy(execution)
            deleted.delete_time = now
            if not request.validate_only:
                self._drop_execution(execution.name)
        return self._done(project, location, deleted, deleted, now)

    # --------------------------------------------------------------------------------- Tasks

    def get_task(self, request: run_v2.GetTaskRequest) -> run_v2.Task:
        execution_name, index = parse_task_name(request.name)
        with self._lock:
            execution = self._execution(execution_name)
            if index >= execution.task_count:
                raise _not_found("TASK", request.name)
            return self._task(execution, index)

    def list_tasks(self, request: run_v2.ListTasksRequest) -> run_v2.ListTasksResponse:
        with self._lock:
            execution = self._execution(request.parent)
            try:
                page = paging.page_of(range(execution.task_count), page_size=request.page_size,
                                      page_token=request.page_token, scope=_list_scope(request))
            except (paging.InvalidPageToken, paging.InvalidPageSize) as error:
                raise invalid(str(error)) from None
            tasks = [self._task(execution, index) for index in page.items]
        return run_v2.ListTasksResponse(tasks=tasks, next_page_token=page.next_page_token)

    def _task(self, execution: run_v2.Execution, index: int) -> run_v2.Task:
        """The task as recorded, or (never started) as it reads now (lock held)."""
        recorded = self._tasks.get(execution.name, {}).get(index)
        if recorded is not None:
            return recorded
        task = build_task(execution, index, None)
        task.etag = _etag(task)
        return task

    # ------------------------------------------------------------------------ runner reports

    def execution_progress(
        self, name: str, counts: TaskCounts, *, started: bool, result: Result | None = None,
        tasks: Sequence[TaskState] = (),
    ) -> None:
        now = clock.now()
        with self._lock:
            current = self._executions.get(name)
            if current is None or _completed(current):  # deleted by a reset, or already ended
                return
            execution = copy(current)
            execution.running_count = counts.running
            execution.succeeded_count = counts.succeeded
            execution.failed_count = counts.failed
            execution.cancelled_count = counts.cancelled
            execution.retried_count = counts.retried
            execution.update_time = now
            if started and "start_time" not in execution:
                execution.start_time = now
                self._set_condition(execution, _condition("ResourcesAvailable", CState.CONDITION_SUCCEEDED))
                self._set_condition(execution, _condition("Started", CState.CONDITION_SUCCEEDED))
                self._job_status(execution, Completion.EXECUTION_RUNNING)
            if result is not None:
                self._complete(execution, result, now)
            execution.etag = _etag(execution)
            self._put_execution(execution)
            for state in tasks:
                self._put_task(build_task(execution, state.index, state))
            if result is not None:  # what the runner left running (a restart, a bug) is stopped
                for task in list(self._tasks.get(name, {}).values()):
                    if task.reconciling:
                        self._put_task(stopped_task(execution, task, now))
            self._update_operations(execution, result)

    # -------------------------------------------------------------------------------- admin

    def execution_counts(self) -> dict[str, int]:
        """Executions per outcome for /_emulator/stats: running, succeeded, failed, cancelled."""
        counts = Counter({"running": 0, "succeeded": 0, "failed": 0, "cancelled": 0})
        with self._lock:
            for execution in self._executions.values():
                counts[self._outcome(execution)] += 1
        return dict(counts)

    def advance(self, name: str) -> None:
        """Start the tasks of an execution held by `queued_seconds: null`."""
        self._execution(name)
        try:
            self.runner.advance(name)
        except AdvanceError as error:
            raise ServiceError(
                grpc.StatusCode.FAILED_PRECONDITION, f"Cannot advance {name}: {error}."
            ) from None

    def timings_changed(self) -> None:
        self.runner.timings_changed()

    def reset(self) -> None:
        """Stop every execution, then forget all jobs and executions (secrets are kept)."""
        self.runner.stop_all(final=False)
        with self._lock:
            tasks = [task.name for by_index in self._tasks.values() for task in by_index.values()]
            for name in [*tasks, *self._executions, *self._jobs]:
                self._store.delete_resource(name)
            self._jobs.clear()
            self._executions.clear()
            self._tasks.clear()
            self._waiting.clear()
        shutil.rmtree(self.data_dir / "executions", ignore_errors=True)

    def shutdown(self) -> None:
        """Stop every running execution; each is recorded failed (it cannot be resumed)."""
        self.runner.stop_all(final=True)

    # ------------------------------------------------------------------------------ internals

    def _job(self, name: str) -> run_v2.Job:
        parse_job_name(name)
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            raise _not_found("JOB", name)
        return job

    def _execution(self, name: str) -> run_v2.Execution:
        self._execution_location(name)
        with self._lock:
            execution = self._executions.get(name)
        if execution is None:
            raise _not_found("EXECUTION", name)
        return execution

    @staticmethod
    def _execution_location(name: str) -> tuple[str, str]:
        project, location, _, _ = parse_execution_name(name)
        return project, location

    @staticmethod
    def _check_etag(etag: str, current: Any) -> None:
        if etag and etag != current.etag:
            raise ServiceError(
                grpc.StatusCode.ABORTED,
                f"The etag {etag} does not match the current etag {current.etag} of "
                f"'{current.name.rsplit('/', 1)[-1]}'; read it again and retry.",
            )

    @staticmethod
    def _page(items: list[Any], request: Any) -> paging.Page[Any]:
        ordered = sorted(items, key=lambda item: (item.create_time, item.name), reverse=True)
        try:
            return paging.page_of(ordered, page_size=request.page_size,
                                  page_token=request.page_token, scope=_list_scope(request))
        except (paging.InvalidPageToken, paging.InvalidPageSize) as error:
            raise invalid(str(error)) from None

    def _stamp_new_job(self, requested: run_v2.Job, name: str, created: datetime) -> run_v2.Job:
        job = copy(requested)
        for output_only in _JOB_OUTPUT_ONLY:
            delattr(job, output_only)
        job.name = name
        task = job.template.template
        job.template.task_count = job.template.task_count or 1
        if "max_retries" not in task:
            task.max_retries = DEFAULT_MAX_RETRIES
        if "timeout" not in task:
            task.timeout = DEFAULT_TIMEOUT
        job.uid = str(uuid.uuid4())
        job.generation = 1
        job.observed_generation = 1
        job.create_time = created
        job.update_time = created
        job.reconciling = False
        job.terminal_condition = _condition("Ready", CState.CONDITION_SUCCEEDED)
        job.etag = _etag(job)
        return job

    def _new_execution(
        self, job: run_v2.Job, overrides: run_v2.RunJobRequest.Overrides, now: datetime
    ) -> run_v2.Execution:
        job_id = job.name.rsplit("/", 1)[-1]
        while True:
            suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
            name = f"{job.name}/executions/{job_id}-{suffix}"
            if name not in self._executions:
                break
        template = copy(job.template.template)
        _apply_overrides(template, overrides)
        task_count = overrides.task_count or job.template.task_count
        execution = run_v2.Execution(
            name=name,
            uid=str(uuid.uuid4()),
            generation=1,
            labels={**job.labels, **job.template.labels},
            annotations=dict(job.template.annotations),
            create_time=now,
            update_time=now,
            launch_stage=job.launch_stage,
            job=job_id,
            parallelism=min(job.template.parallelism, task_count),
            task_count=task_count,
            template=template,
            reconciling=True,
            observed_generation=1,
            log_uri=(execution_dir(self.data_dir, name) / "logs").as_uri(),
        )
        execution.conditions = [
            _condition("Completed", CState.CONDITION_PENDING),
            _condition("ResourcesAvailable", CState.CONDITION_PENDING),
            _condition("Started", CState.CONDITION_PENDING),
        ]
        execution.etag = _etag(execution)
        return execution

    @staticmethod
    def _set_condition(execution: run_v2.Execution, condition: Condition) -> None:
        others = [c for c in execution.conditions if c.type_ != condition.type_]
        order = ("Completed", "ResourcesAvailable", "Started")
        execution.conditions = sorted(
            [*others, condition], key=lambda c: order.index(c.type_) if c.type_ in order else 9
        )

    def _complete(self, execution: run_v2.Execution, result: Result, now: datetime) -> None:
        execution.completion_time = now
        execution.reconciling = False
        if result.ending == Ending.SUCCEEDED:
            condition = _condition("Completed", CState.CONDITION_SUCCEEDED, "Execution completed successfully.")
            status = Completion.EXECUTION_SUCCEEDED
        elif result.ending == Ending.CANCELLED:
            condition = _condition("Completed", CState.CONDITION_FAILED, result.message, Reason.CANCELLED)
            status = Completion.EXECUTION_CANCELLED
        else:
            reason = Reason.NON_ZERO_EXIT_CODE if result.ending == Ending.FAILED and not result.timed_out else None
            condition = _condition("Completed", CState.CONDITION_FAILED, result.message, reason)
            status = Completion.EXECUTION_FAILED
        self._set_condition(execution, condition)
        self._job_status(execution, status, completed=now)

    def _job_status(
        self,
        execution: run_v2.Execution,
        status: ExecutionReference.CompletionStatus,
        completed: datetime | None = None,
    ) -> None:
        """Mirror an execution's status in its job's latest_created_execution (lock held)."""
        job_name = execution.name.split("/executions/")[0]
        job = self._jobs.get(job_name)
        if job is None or job.latest_created_execution.name != execution.name:
            return
        updated = copy(job)
        updated.latest_created_execution.completion_status = status
        if completed is not None:
            updated.latest_created_execution.completion_time = completed
        updated.etag = _etag(updated)
        self._put_job(updated)

    def _update_operations(self, execution: run_v2.Execution, result: Result | None) -> None:
        """The operations waiting on an execution carry it, as it is now, as their metadata (a
        client polling RunJob's operation sees the progress); a result finishes them."""
        waiting = self._waiting.get(execution.name, []) if result is None else self._waiting.pop(execution.name, [])
        for operation_name, kind in waiting:
            operation = self._operations.find(operation_name)
            if operation is None:
                continue
            operation.metadata.CopyFrom(pack(execution))
            if result is None:
                self._operations.put(operation, execution.create_time)
                continue
            operation.done = True
            if kind == "cancel" or result.ending == Ending.SUCCEEDED:
                operation.response.CopyFrom(pack(execution))
            else:
                code = code_pb2.CANCELLED if result.ending == Ending.CANCELLED else code_pb2.FAILED_PRECONDITION
                operation.error.CopyFrom(status_pb2.Status(code=code, message=result.message))
            self._operations.put(operation, execution.create_time)

    def _done(
        self, project: str, location: str, metadata: Any, response: Any, now: datetime
    ) -> operations_pb2.Operation:
        operation = new_operation(project, location, str(uuid.uuid4()), metadata, response)
        self._operations.put(operation, now)
        return operation

    def _pending(
        self, project: str, location: str, metadata: Any, now: datetime, *, record: bool = True
    ) -> operations_pb2.Operation:
        operation = new_operation(project, location, str(uuid.uuid4()), metadata)
        if record:
            self._operations.put(operation, now)
        return operation

    @staticmethod
    def _outcome(execution: run_v2.Execution) -> str:
        if not _completed(execution):
            return "running"
        completed = next((c for c in execution.conditions if c.type_ == "Completed"), None)
        if completed is not None and completed.state == CState.CONDITION_SUCCEEDED:
            return "succeeded"
        if completed is not None and completed.execution_reason == Reason.CANCELLED:
            return "cancelled"
        return "failed"

    def _put_job(self, job: run_v2.Job) -> None:
        self._jobs[job.name] = job
        self._store.put_resource(JOB_KIND, job.name, clock.rfc3339(job.create_time), run_v2.Job.serialize(job))

    def _put_execution(self, execution: run_v2.Execution) -> None:
        self._executions[execution.name] = execution
        self._store.put_resource(
            EXECUTION_KIND, execution.name, clock.rfc3339(execution.create_time),
            run_v2.Execution.serialize(execution),
        )

    def _put_task(self, task: run_v2.Task) -> None:
        task.etag = _etag(task)
        execution_name = task.name.split("/tasks/")[0]
        self._tasks.setdefault(execution_name, {})[task.index] = task
        self._store.put_resource(TASK_KIND, task.name, clock.rfc3339(task.create_time), run_v2.Task.serialize(task))

    def _drop_execution(self, name: str) -> None:
        del self._executions[name]
        self._store.delete_resource(name)
        for task in self._tasks.pop(name, {}).values():
            self._store.delete_resource(task.name)

    def _load(self) -> None:
        """Read every record back; executions the previous run left unfinished are failed now,
        with the operations waiting for them."""
        for raw in self._store.load_resources(JOB_KIND):
            job = run_v2.Job.deserialize(raw)
            self._jobs[job.name] = job
        for raw in self._store.load_resources(TASK_KIND):
            task = run_v2.Task.deserialize(raw)
            self._tasks.setdefault(task.name.split("/tasks/")[0], {})[task.index] = task
        unfinished: list[run_v2.Execution] = []
        for raw in self._store.load_resources(EXECUTION_KIND):
            execution = run_v2.Execution.deserialize(raw)
            self._executions[execution.name] = execution
            if not _completed(execution):
                unfinished.append(execution)
        if not unfinished:
            return
        names = {execution.name for execution in unfinished}
        for operation in self._operations.unfinished():
            target = run_v2.Execution.pb(run_v2.Execution())
            if operation.metadata.Unpack(target) and target.name in names:
                self._waiting.setdefault(target.name, []).append((operation.name, "run"))
        # One sweep for all of them (a process-table reading and a grace period in all, not one
        # per execution: recovery stays fast with a thousand left unfinished).
        stop_leftovers(self.data_dir, [execution_dir(self.data_dir, e.name) for e in unfinished],
                       grace=1.0)
        for execution in unfinished:
            self.execution_progress(
                execution.name,
                TaskCounts(
                    succeeded=execution.succeeded_count, failed=execution.failed_count,
                    cancelled=execution.cancelled_count + execution.running_count,
                    retried=execution.retried_count,
                ),
                started="start_time" in execution,
                result=Result(Ending.STOPPED, RESTARTED_MESSAGE),
            )


def _apply_overrides(template: run_v2.TaskTemplate, overrides: run_v2.RunJobRequest.Overrides) -> None:
    """RunJob's per-execution changes: container args (replaced or cleared) and env (merged by
    name), and the task timeout. An override without a name applies to the first container."""
    if "timeout" in overrides:
        template.timeout = overrides.timeout
    for override in overrides.container_overrides:
        container = next(
            (c for c in template.containers if c.name == override.name), template.containers[0]
        )
        if override.clear_args:
            container.args = []
        elif override.args:
            container.args = list(override.args)
        if override.env:
            merged = {variable.name: variable for variable in container.env}
            merged.update({variable.name: variable for variable in override.env})
            container.env = list(merged.values())
