"""The Vertex AI JobService (custom jobs) and the Operations it creates, free of any transport.

Methods take the official request messages and return the official responses; a refusal is a
`ServiceError` with the gRPC code and message a client of the real service would get. The
gRPC and REST transports both call these methods, so both behave the same.

Choices where the real service is not documented:

* ids are random 18–19 digit numbers; the project in names is the one the client sent (the
  real service answers with the project *number*, which the emulator cannot know);
* ListCustomJobs returns the newest job first (create_time descending, then id), pages of
  `filters.DEFAULT_PAGE_SIZE`, at most `filters.MAX_PAGE_SIZE`; `read_mask` is ignored;
* a job that was not finished when the emulator stopped or crashed is FAILED with code 13
  (INTERNAL) and a message that says so: its processes are gone and it cannot be resumed;
* a replica's non-zero exit fails the job with code 3 and the real wording ("The replica
  workerpool0-0 exited with a non-zero status of 2. Termination reason: Error."); an exceeded
  `scheduling.timeout` fails it with code 4 (DEADLINE_EXCEEDED); a cancel ends it CANCELLED
  with code 1, "CANCELED" (see runner.py);
* with `enable_web_access`, `web_access_uris` maps each replica (`workerpool0-0`) to
  `http://HOST:REST_PORT/_emulator/web-access/{id}/{replica}` once the job is RUNNING: a page
  naming the replica's working directory (the emulator has no interactive shell).
"""

from __future__ import annotations

import secrets
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1 import CustomJob
from google.cloud.aiplatform_v1 import JobState as State
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.rpc import status_pb2

from gcpjobs.emulator import clock, limits, names, paging
from gcpjobs.emulator.config import Timings
from gcpjobs.emulator.errors import ServiceError, invalid
from gcpjobs.emulator.executor import JobEnvironment, job_dir, stop_leftovers
from gcpjobs.emulator.messages import copy
from gcpjobs.emulator.operations import OperationRegistry, new_operation
from gcpjobs.emulator.store import JobStore, StoredJob
from gcpjobs.emulator.threads import AdvanceError
from gcpjobs.emulator.vertex import filters
from gcpjobs.emulator.vertex.runner import (
    CODE_INTERNAL,
    JobError,
    JobRunner,
    ProcessRunner,
)
from gcpjobs.emulator.vertex.validation import (
    REQUIRED,
    FieldProblem,
    format_found_errors,
    validate_custom_job,
)

TERMINAL_STATES = frozenset(
    {State.JOB_STATE_SUCCEEDED, State.JOB_STATE_FAILED, State.JOB_STATE_CANCELLED}
)
RESTARTED_MESSAGE = (
    "The gcpjobs emulator restarted while this job was running; its replicas were stopped and "
    "the job cannot be resumed."
)

SERVICE = "Vertex AI"  # in "Location ... is not a Vertex AI region"


def parse_job_name(name: str) -> tuple[str, str, str]:
    project, location, job_id = names.split_name(
        name, ("projects", "locations", "customJobs"), what="CustomJob name",
        pattern="projects/{project}/locations/{location}/customJobs/{custom_job}",
    )
    names.check_project_and_location(project, location, service=SERVICE)
    names.check_custom_job_id(job_id)
    return project, location, job_id


@dataclass
class _Record:
    project: str
    location: str
    job_id: str
    job: CustomJob  # a snapshot: replaced, never changed in place
    view: filters.JobView


def _view(job: CustomJob) -> filters.JobView:
    return filters.JobView(
        display_name=job.display_name,
        state=State(job.state).name,
        create_time=job.create_time,
        update_time=job.update_time,
        start_time=job.start_time,
        end_time=job.end_time,
        labels=dict(job.labels),
    )


RunnerFactory = Callable[["JobService"], JobRunner]


class JobService:
    """All custom jobs of one emulator, in memory for speed, written through to SQLite."""

    def __init__(
        self,
        *,
        data_dir: Path,
        store: JobStore,
        operations: OperationRegistry | None = None,
        timings: Timings | None = None,
        runner_factory: RunnerFactory | None = None,
        job_environment: JobEnvironment | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.job_environment = job_environment or JobEnvironment(data_dir)
        self._store = store
        self._operations = operations or OperationRegistry(store)
        self._timings = timings or Timings()
        self._lock = threading.RLock()
        self._jobs: dict[str, _Record] = {}
        self._order: list[str] = []  # names, oldest first
        self._ids: set[str] = set()
        self._web_access_base = "http://127.0.0.1"
        factory = runner_factory or _process_runner
        self.runner: JobRunner = factory(self)
        self._load()

    # ------------------------------------------------------------------------------ settings

    def set_web_access_base(self, base: str) -> None:
        self._web_access_base = base.rstrip("/")

    def web_access_uri(self, name: str, replica: str) -> str:
        job_id = name.rsplit("/", 1)[-1]
        return f"{self._web_access_base}/_emulator/web-access/{job_id}/{replica}"

    @property
    def timings(self) -> Timings:
        return self._timings

    def set_timings(self, timings: Timings) -> None:
        self._timings = timings
        self.runner.timings_changed()

    # ---------------------------------------------------------------------------- JobService

    def create_custom_job(self, request: aiplatform_v1.CreateCustomJobRequest) -> CustomJob:
        project, location = names.location_name(request.parent, service=SERVICE)
        limits.check_request_size(request)
        if "custom_job" not in request:
            raise invalid(format_found_errors([FieldProblem("custom_job", REQUIRED)]))
        problems = validate_custom_job(request.custom_job)
        if problems:
            raise invalid(format_found_errors(problems))
        job = copy(request.custom_job)
        # Output-only fields a client may have sent are ignored, as the real service does.
        for output_only in ("name", "state", "create_time", "start_time", "end_time",
                            "update_time", "error", "web_access_uris"):
            delattr(job, output_only)
        now = clock.now()
        with self._lock:
            job_id = self._new_id()
            job.name = f"projects/{project}/locations/{location}/customJobs/{job_id}"
            job.state = State.JOB_STATE_QUEUED
            job.create_time = now
            job.update_time = now
            record = _Record(project, location, job_id, job, _view(job))
            self._add(record)
            self._persist(record)
        try:
            self.runner.submit(job)
        except RuntimeError:  # a reset or shutdown is under way
            with self._lock:
                self._remove(job.name)
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable."
            ) from None
        return job

    def get_custom_job(self, request: aiplatform_v1.GetCustomJobRequest) -> CustomJob:
        return self._record(request.name).job

    def list_custom_jobs(
        self, request: aiplatform_v1.ListCustomJobsRequest
    ) -> aiplatform_v1.ListCustomJobsResponse:
        project, location = names.location_name(request.parent, service=SERVICE)
        try:
            matches = filters.compile_filter(request.filter)
        except filters.FilterError as error:
            raise invalid(str(error)) from None
        with self._lock:
            records = [self._jobs[name] for name in reversed(self._order)]
        selected = [
            r.job for r in records
            if r.project == project and r.location == location and matches(r.view)
        ]
        try:
            page = paging.page_of(selected, page_size=request.page_size, page_token=request.page_token,
                                  filter_text=request.filter, scope=request.parent)
        except (paging.InvalidPageToken, paging.InvalidPageSize) as error:
            raise invalid(str(error)) from None
        return aiplatform_v1.ListCustomJobsResponse(
            custom_jobs=page.items, next_page_token=page.next_page_token
        )

    def cancel_custom_job(self, request: aiplatform_v1.CancelCustomJobRequest) -> empty_pb2.Empty:
        with self._lock:
            record = self._record(request.name)
            state = State(record.job.state)
            if state in TERMINAL_STATES:
                raise ServiceError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f'Cannot cancel CustomJob "{request.name}" because it is in terminal state '
                    f"{state.name}.",
                )
            if state != State.JOB_STATE_CANCELLING:
                self._apply(record, State.JOB_STATE_CANCELLING)
        self.runner.cancel(request.name)
        return empty_pb2.Empty()

    def delete_custom_job(
        self, request: aiplatform_v1.DeleteCustomJobRequest
    ) -> operations_pb2.Operation:
        with self._lock:
            record = self._record(request.name)
            state = State(record.job.state)
            if state not in TERMINAL_STATES:
                raise ServiceError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f'Cannot delete CustomJob "{request.name}" because it is in state '
                    f"{state.name}; cancel it and wait until it has ended.",
                )
            self._remove(request.name)
            return self._done_operation(record)

    # ------------------------------------------------------------------------ runner reports

    def transition(
        self,
        name: str,
        state: State,
        *,
        error: JobError | None = None,
        web_access_uris: Mapping[str, str] | None = None,
    ) -> None:
        with self._lock:
            record = self._jobs.get(name)
            if record is None:  # removed by a reset meanwhile
                return
            current = State(record.job.state)
            if current in TERMINAL_STATES:
                return
            if current == State.JOB_STATE_CANCELLING and state not in TERMINAL_STATES:
                return  # a cancel already won; the runner will end the job shortly
            self._apply(record, state, error=error, web_access_uris=web_access_uris)

    # -------------------------------------------------------------------------------- admin

    def advance(self, name: str) -> str:
        """Move a held job one state on (QUEUED → PENDING → RUNNING); returns the new state."""
        self._record(name)
        try:
            return self.runner.advance(name)
        except AdvanceError as error:
            raise ServiceError(
                grpc.StatusCode.FAILED_PRECONDITION, f"Cannot advance {name}: {error}."
            ) from None

    def job_state_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(State(r.job.state).name for r in self._jobs.values()))

    def reset(self) -> None:
        """Stop every job, then forget all jobs and operations (and the jobs' files)."""
        self.runner.stop_all(final=False)
        with self._lock:
            self._jobs.clear()
            self._order.clear()
            self._ids.clear()
            self._store.clear()
        shutil.rmtree(self.data_dir / "jobs", ignore_errors=True)

    def shutdown(self) -> None:
        """Stop every running job; each is recorded FAILED (it cannot be resumed)."""
        self.runner.stop_all(final=True)

    # ------------------------------------------------------------------------------ internals

    def _record(self, name: str) -> _Record:
        parse_job_name(name)
        with self._lock:
            record = self._jobs.get(name)
        if record is None:
            raise ServiceError(grpc.StatusCode.NOT_FOUND, "The CustomJob does not exist.")
        return record

    def _new_id(self) -> str:
        while True:
            # 18 or 19 digits and below 2**63, like the real ids (e.g. 306719677785047040).
            candidate = str(10**17 + secrets.randbelow(9 * 10**18 - 10**17))
            if candidate not in self._ids:
                return candidate

    def _add(self, record: _Record) -> None:
        self._jobs[record.job.name] = record
        self._order.append(record.job.name)
        self._ids.add(record.job_id)

    def _remove(self, name: str) -> None:
        record = self._jobs.pop(name)
        self._order.remove(name)
        self._ids.discard(record.job_id)
        self._store.delete_job(name)

    def _apply(
        self,
        record: _Record,
        state: State,
        *,
        error: JobError | None = None,
        web_access_uris: Mapping[str, str] | None = None,
    ) -> None:
        """Record a new state (lock held): times as the proto documents them, then persist."""
        job = copy(record.job)
        now = clock.now()
        job.state = state
        job.update_time = now
        if state == State.JOB_STATE_RUNNING and "start_time" not in job:
            job.start_time = now
        if state in TERMINAL_STATES:
            job.end_time = now
        if error is not None:
            job.error = status_pb2.Status(code=error.code, message=error.message)
        if web_access_uris:
            job.web_access_uris = dict(web_access_uris)
        record.job = job
        record.view = _view(job)
        self._persist(record)

    def _persist(self, record: _Record) -> None:
        job = record.job
        self._store.put_job(
            StoredJob(
                name=job.name,
                job_id=record.job_id,
                project=record.project,
                location=record.location,
                state=State(job.state).name,
                create_time=clock.rfc3339(job.create_time),
                update_time=clock.rfc3339(job.update_time),
                labels=dict(job.labels),
                proto=CustomJob.serialize(job),
            )
        )

    def _done_operation(self, record: _Record) -> operations_pb2.Operation:
        now = clock.now()
        metadata = aiplatform_v1.DeleteOperationMetadata(
            generic_metadata=aiplatform_v1.GenericOperationMetadata(create_time=now, update_time=now)
        )
        operation_id = str(10**17 + secrets.randbelow(9 * 10**18 - 10**17))
        operation = new_operation(record.project, record.location, operation_id, metadata, empty_pb2.Empty())
        self._operations.put(operation, now)
        return operation

    def _load(self) -> None:
        """Read every job back; any the previous run left unfinished is FAILED now, once
        whatever it left running is stopped (executor.stop_leftovers: one sweep for all of them,
        so a thousand unfinished jobs cost one process-table reading and one grace period)."""
        unfinished: list[_Record] = []
        for stored in self._store.load_jobs():
            job = CustomJob.deserialize(stored.proto)
            record = _Record(stored.project, stored.location, stored.job_id, job, _view(job))
            self._add(record)
            if State(job.state) not in TERMINAL_STATES:
                unfinished.append(record)
        stop_leftovers(self.data_dir, [job_dir(self.data_dir, r.job_id) for r in unfinished], grace=1.0)
        for record in unfinished:
            self._apply(record, State.JOB_STATE_FAILED, error=JobError(CODE_INTERNAL, RESTARTED_MESSAGE))


def _process_runner(service: JobService) -> JobRunner:
    return ProcessRunner(
        data_dir=service.data_dir,
        sink=service,
        timings=lambda: service.timings,
        web_access_uri=service.web_access_uri,
        environment=service.job_environment,
    )
