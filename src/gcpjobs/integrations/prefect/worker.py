"""Prefect 3 workers that run each flow run as a Vertex AI custom job or a Cloud Run execution.

`prefect worker start --pool P` (a pool of type `gcpjobs-vertex` or `gcpjobs-cloud-run`) makes
one worker; for each flow run it is given, `run()`:

1. builds the job from the pool's base job template and the run's job variables
   (`configuration.to_spec()`: one validated spec, or one line saying what is wrong);
2. creates it (a lost reply never makes a second job: see the clients' submission ids) and
   reports the job's resource name to Prefect as the flow run's infrastructure id at once;
3. follows it through the process's one shared watcher (`watch.shared`), so a worker with a
   hundred flow runs in flight makes one list call per region each cycle, not a hundred gets,
   and logs every state change to the flow run's log;
4. returns the job's status code. A job that ends badly before the flow could report (bad
   image, command not found, timeout) leaves the flow run Crashed with the job's error.

A worker that starts re-attaches to the jobs of its pool's unfinished flow runs (those a
worker before it created and did not see end), so a crash of the worker loses no job.

Cancelling a flow run in Prefect cancels its job. Prefect 3's own worker-side cancellation
only covers runs that have not started (and is off by default), so these workers also keep
an eye on their in-flight runs: one Prefect API query per interval for all of them
(`CancellationWatch`), and each one seen CANCELLING has its job cancelled
(`kill_infrastructure`) and is then marked Cancelled.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import anyio.abc
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import InfrastructureNotFound
from prefect.states import Cancelled
from prefect.workers.base import BaseWorker, BaseWorkerResult

from gcpjobs.clients.kinds import client_for_kind, kind_of_name
from gcpjobs.errors import ApiError, GcpJobsError, JobNotFoundError
from gcpjobs.integrations.prefect.configuration import (
    CloudRunJobConfiguration,
    GcpJobsJobConfiguration,
    VertexJobConfiguration,
)
from gcpjobs.integrations.prefect.templates import prefect_base_job_template
from gcpjobs.kinds import kind_entry
from gcpjobs.specs.labels import new_submission_id
from gcpjobs.states import JobState

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun

    from gcpjobs.clients.protocol import JobClient
    from gcpjobs.core.events import StateChange
    from gcpjobs.results import JobStatus

# Job log lines are copied into the flow run's log unless this is set to 0/false/no.
FORWARD_LOGS_ENV = "GCPJOBS_PREFECT_FORWARD_LOGS"
# How often the in-flight flow runs are checked for a cancel request (one query for all).
CANCEL_POLL_ENV = "GCPJOBS_PREFECT_CANCEL_POLL_SECONDS"
_DEFAULT_CANCEL_POLL_SECONDS = 2.0
# Unfinished flow runs of a pool a starting worker re-attaches to, at most (one page).
_REATTACH_LIMIT = 200  # the most the Prefect API returns in one page
_LOGO_URL = "https://www.gstatic.com/images/branding/product/2x/google_cloud_64dp.png"
_DOCS_URL = "https://github.com/gcpjobs/gcpjobs/blob/main/docs/prefect.md"


class GcpJobsWorkerResult(BaseWorkerResult):
    """The job's resource name and status code (0 only when the job succeeded)."""


def cancel_poll_seconds() -> float:
    """The cancel-check interval from the environment; a bad value is one line."""
    text = os.environ.get(CANCEL_POLL_ENV, "").strip()
    if not text:
        return _DEFAULT_CANCEL_POLL_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise GcpJobsError(f"{CANCEL_POLL_ENV}={text!r} must be a number of seconds above 0, "
                           "e.g. 2")
    return seconds


def forward_logs_enabled() -> bool:
    """Whether job log lines go to the flow run's log (`GCPJOBS_PREFECT_FORWARD_LOGS`)."""
    text = os.environ.get(FORWARD_LOGS_ENV, "").strip().lower()
    if text in ("", "1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise GcpJobsError(f"{FORWARD_LOGS_ENV}={text!r} must be true or false")


class CancellationWatch:
    """Finds which of a worker's in-flight flow runs Prefect wants cancelled: one query per
    interval for all of them, however many there are, and nothing while there are none."""

    def __init__(self, client: Callable[[], PrefectClient], on_cancelling: Callable[[UUID], Any],
                 interval: float) -> None:
        self._client = client
        self._on_cancelling = on_cancelling
        self._interval = interval
        self._in_flight: set[UUID] = set()
        self._handled: set[UUID] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add(self, flow_run_id: UUID) -> None:
        self._in_flight.add(flow_run_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="gcpjobs-prefect-cancellation-watch")
        self._wake.set()

    def discard(self, flow_run_id: UUID) -> None:
        self._in_flight.discard(flow_run_id)
        self._handled.discard(flow_run_id)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while self._in_flight:
            watched = sorted(self._in_flight - self._handled)
            if watched:
                try:
                    runs = await self._client().read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            id=FlowRunFilterId(any_=watched),
                            state=FlowRunFilterState(type=FlowRunFilterStateType(
                                any_=[StateType.CANCELLING])),
                        ),
                        sort=FlowRunSort.ID_DESC, limit=len(watched))
                except Exception as error:  # the Prefect API hiccuped: ask again next time
                    _logger().warning("could not check flow runs for cancellation: %s",
                                      str(error).splitlines()[0][:200])
                    runs = []
                for run in runs:
                    if run.id in self._in_flight and run.id not in self._handled:
                        self._handled.add(run.id)
                        self._on_cancelling(run.id)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)


def _logger() -> Any:
    from prefect.logging import get_logger

    return get_logger("gcpjobs.worker")


class GcpJobsWorker(BaseWorker[Any, Any, GcpJobsWorkerResult], abc.ABC):
    """What the Vertex and Cloud Run workers share; each names its kind and client.

    Listing `abc.ABC` among the bases keeps Prefect from registering this class as a worker
    type of its own (Prefect skips direct ABC subclasses).
    """

    # The kind registry's name for what this worker runs: its client and its service's name
    # are the registry's (`gcpjobs.kinds`).
    kind: ClassVar[str]
    # What the first submission would import besides the client: imported off the event loop
    # at setup, since the Google client libraries take most of a second to load.
    preloaded_modules: ClassVar[tuple[str, ...]]
    service_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:  # a worker of one kind: named as the registry names it
            cls.service_name = kind_entry(cls.kind).label

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[tuple[Any, ...], JobClient] = {}
        self._cancellation: CancellationWatch | None = None
        self._jobs: dict[UUID, tuple[str, GcpJobsJobConfiguration]] = {}
        self._cancels: set[asyncio.Task[None]] = set()  # held so they are not collected
        self._reattached = False

    @classmethod
    def get_default_base_job_template(cls) -> dict[str, Any]:
        return prefect_base_job_template(cls.kind)

    # ---------------------------------------------------------------------------- lifecycle

    async def setup(self) -> None:
        await super().setup()
        client_module = kind_entry(self.kind).client_class.partition(":")[0]
        for module in (client_module, *self.preloaded_modules):
            await asyncio.to_thread(importlib.import_module, module)
        self._cancellation = CancellationWatch(
            lambda: self.client, self._on_cancelling, cancel_poll_seconds())

    async def teardown(self, *exc_info: Any) -> None:
        try:
            if self._cancellation is not None:
                await self._cancellation.aclose()
            clients, self._clients = list(self._clients.values()), {}
            for client in clients:
                await client.close()
        finally:
            await super().teardown(*exc_info)

    def _client_for(self, configuration: GcpJobsJobConfiguration) -> JobClient:
        """One client per distinct set of options (project, credentials ...), kept for the
        worker's life: its connections and its place in the shared watcher are reused."""
        options = configuration.client_options()
        key = tuple(sorted((name, id(value) if name == "credentials" else value)
                           for name, value in options.items()))
        client = self._clients.get(key)
        if client is None:
            client = client_for_kind(self.kind, **options)
            self._clients[key] = client
        return client

    # ---------------------------------------------------------------------------- running

    async def run(
        self,
        flow_run: FlowRun,
        configuration: GcpJobsJobConfiguration,
        task_status: anyio.abc.TaskStatus[Any] | None = None,
    ) -> GcpJobsWorkerResult:
        logger = self.get_flow_run_logger(flow_run)
        spec = configuration.to_spec()
        client = self._client_for(configuration)
        status = await client.create(spec, submission_id=new_submission_id())
        if task_status is not None:
            task_status.started(status.name)
        logger.info(f"Created {self.service_name} job {status.name}")
        return await self._follow(flow_run, configuration, spec, client, status)

    async def _follow(self, flow_run: FlowRun, configuration: GcpJobsJobConfiguration,
                      spec: Any, client: JobClient, status: JobStatus) -> GcpJobsWorkerResult:
        """Watch the flow run's job to its end (logging each state change, cancelling it when
        Prefect asks), finish it, and settle the flow run if the job ended badly."""
        from gcpjobs.watch.shared import default_watcher

        logger = self.get_flow_run_logger(flow_run)
        name = status.name
        self._jobs[flow_run.id] = (name, configuration)

        def log_change(change: StateChange) -> None:
            logger.info(str(change))

        if self._cancellation is not None:
            self._cancellation.add(flow_run.id)
        ended = asyncio.Event()
        forwarding = asyncio.get_running_loop().create_task(
            self._forward_logs(flow_run, client, name, ended.is_set))
        try:
            result = await default_watcher().wait(
                client, name, on_change=log_change, known=status)
        except BaseException:
            forwarding.cancel()  # no end to wait for: the run is being torn down
            raise
        finally:
            ended.set()  # the forwarder makes one last read, then stops
            if self._cancellation is not None:
                self._cancellation.discard(flow_run.id)
            self._jobs.pop(flow_run.id, None)
        await forwarding
        if spec is not None:
            await client.finish(spec, name)

        if result.state is JobState.CANCELLED:
            await self._mark_cancelled_if_cancelling(flow_run.id, name)
        elif not result.succeeded:
            reason = result.error.message if result.error else "no error message"
            message = f"{self.service_name} job {name} ended {result.state}: {reason}"
            logger.error(message)
            # Refused by Prefect when the flow already reported its own end (Failed ...).
            await self._propose_crashed_state(flow_run, message)
        return GcpJobsWorkerResult(identifier=name, status_code=result.exit_code)

    async def _forward_logs(self, flow_run: FlowRun, client: JobClient, name: str,
                            ended: Callable[[], bool]) -> None:
        """Copy the job's log lines into the flow run's log as they are written, each once,
        until the job has ended: what the job printed before the flow's own logging began
        (a missing package, a crash) is there too. The worker's flow runs share one Logging
        query a poll per project (`LogWatcher`), so forwarding stays within Logging's read
        quota however many runs are in flight. Trouble reading logs is reported once, never
        fails the run."""
        from gcpjobs.clients.logs import ended_since
        from gcpjobs.watch.logs import default_log_watcher

        logger = self.get_flow_run_logger(flow_run)
        try:
            if not forward_logs_enabled():
                return
            target = client.target
            async for line in default_log_watcher().follow(
                    target, name, until=ended_since(ended, target),
                    credentials=getattr(client, "credentials", None)):
                # INFO either way: Prefect's own console logging goes to stderr.
                stream = " stderr" if line.stderr else ""
                logger.info(f"[{line.source}{stream}] {line.text}")
        except Exception as error:
            logger.warning(f"Could not forward the logs of {self.service_name} job {name}: "
                           f"{str(error).splitlines()[0][:200]}")

    # ---------------------------------------------------------------------------- re-attach

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        """Prefect's poll for new flow runs; the first one also re-attaches to the jobs of
        flow runs a previous worker of this pool started and did not see end."""
        if not self._reattached:
            self._reattached = True
            await self._reattach()
        return await super().get_and_submit_flow_runs()

    async def _reattach(self) -> None:
        """Follow again the jobs of this pool's unfinished flow runs: without it, a job that
        failed after its worker died would leave its flow run Pending or Running forever,
        and a cancel from Prefect would not reach it."""
        try:
            runs = await self.client.read_flow_runs(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(
                    any_=[self._work_pool_name])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[
                        StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]))),
                sort=FlowRunSort.ID_DESC, limit=_REATTACH_LIMIT)
        except Exception as error:
            self._logger.warning("could not look for flow runs to re-attach to: %s",
                                 str(error).splitlines()[0][:200])
            return
        for flow_run in runs:
            name = flow_run.infrastructure_pid or ""
            if kind_of_name(name) != self.kind or flow_run.id in self._jobs:
                continue
            assert self._runs_task_group is not None
            self._runs_task_group.start_soon(self._reattach_one, flow_run, name)

    async def _reattach_one(self, flow_run: FlowRun, name: str) -> None:
        logger = self.get_flow_run_logger(flow_run)
        try:
            configuration = await self.job_configuration.resolve_for_flow_run(
                flow_run, client=self.client, work_pool=self.work_pool,
                worker_name=self.name, worker_id=self.backend_id)
            client = self._client_for(configuration)
            status = await client.get(name)
        except Exception as error:
            logger.warning(f"Could not re-attach to {self.service_name} job {name}: "
                           f"{str(error).splitlines()[0][:200]}")
            return
        logger.info(f"Re-attached to {self.service_name} job {name} ({status.state})")
        try:
            spec = configuration.to_spec()
        except GcpJobsError:
            spec = None  # the pool changed since: the job is followed, not finished
        await self._follow(flow_run, configuration, spec, client, status)

    # ---------------------------------------------------------------------------- cancelling

    async def kill_infrastructure(
        self,
        infrastructure_pid: str,
        configuration: GcpJobsJobConfiguration,
        grace_seconds: int = 30,
    ) -> None:
        """Cancel the job; InfrastructureNotFound when it is gone or has already ended."""
        client = self._client_for(configuration)
        try:
            await client.cancel(infrastructure_pid)
        except JobNotFoundError:
            raise InfrastructureNotFound(
                f"Cannot stop {self.service_name} job {infrastructure_pid}: it was not found; "
                "it may have been deleted") from None
        except ApiError as error:
            if error.code != "FAILED_PRECONDITION":
                raise
            raise InfrastructureNotFound(
                f"Cannot stop {self.service_name} job {infrastructure_pid}: it has already "
                "ended") from None

    def _on_cancelling(self, flow_run_id: UUID) -> None:
        job = self._jobs.get(flow_run_id)
        if job is None:
            return
        task = asyncio.get_running_loop().create_task(self._cancel_job(flow_run_id, *job))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _cancel_job(self, flow_run_id: UUID, name: str,
                          configuration: GcpJobsJobConfiguration) -> None:
        run_logger = _logger()
        try:
            flow_run = await self.client.read_flow_run(flow_run_id)
            run_logger = self.get_flow_run_logger(flow_run)
            run_logger.info(f"Flow run is cancelling: cancelling {self.service_name} job {name}")
            await self.kill_infrastructure(name, configuration)
        except InfrastructureNotFound as error:
            run_logger.warning(str(error))
        except Exception as error:
            run_logger.error(f"Could not cancel {self.service_name} job {name}: {error}")

    async def _mark_cancelled_if_cancelling(self, flow_run_id: UUID, name: str) -> None:
        """The job's processes are gone, and with them whoever would have reported the end:
        finish the cancel Prefect asked for."""
        flow_run = await self.client.read_flow_run(flow_run_id)
        if flow_run.state is None or flow_run.state.type is not StateType.CANCELLING:
            return
        await self.client.set_flow_run_state(
            flow_run_id,
            Cancelled(message=f"{self.service_name} job {name} was cancelled"),
            force=True,
        )


class VertexWorker(GcpJobsWorker):
    """Runs each flow run as a Vertex AI custom job."""

    type = "gcpjobs-vertex"
    kind = "vertex"
    preloaded_modules = ("gcpjobs.protos.vertex",
                         "google.cloud.aiplatform_v1.services.job_service")
    job_configuration = VertexJobConfiguration
    _display_name = "Vertex AI (gcpjobs)"
    _description = (
        "Run each flow run as a Vertex AI custom job: any machine, GPUs, disks, networks, "
        "persistent resources and spot capacity; cancellable from Prefect. Runs against a "
        "local emulator when no Google Cloud project is configured.")
    _documentation_url = _DOCS_URL
    _logo_url = _LOGO_URL


class CloudRunWorker(GcpJobsWorker):
    """Runs each flow run as an execution of a Cloud Run job."""

    type = "gcpjobs-cloud-run"
    kind = "cloud-run"
    preloaded_modules = ("gcpjobs.protos.cloudrun", "google.cloud.run_v2.services.jobs",
                         "google.cloud.run_v2.services.executions")
    job_configuration = CloudRunJobConfiguration
    _display_name = "Cloud Run (gcpjobs)"
    _description = (
        "Run each flow run as a Cloud Run job execution, with secrets from Secret Manager; "
        "cancellable from Prefect. Runs against a local emulator when no Google Cloud "
        "project is configured.")
    _documentation_url = _DOCS_URL
    _logo_url = _LOGO_URL
