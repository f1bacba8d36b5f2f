"""The Cloud Run jobs client: `AsyncCloudRunClient`, and `CloudRunClient` for scripts.

A Cloud Run job runs in two steps: a Job resource (the template) is created or updated, then
RunJob starts an Execution of it. gcpjobs watches the execution, and deletes the Job after the
execution has finished unless the spec says `keep_job` (as prefect-gcp's worker does). Both
speak `google.cloud.run.v2` through the official GAPIC clients, on GCP or on a gcpjobs
emulator (see `target.py`); REST calls run the sync client in a worker thread, as the Vertex
client does (see its module doc for why).

Safety, as for Vertex: a call whose reply was lost is never sent again blindly.
- CreateJob names the job (`job_id`), so a create whose reply was lost is found by name; the
  job carries the submission-id label, which tells ours from someone else's.
- RunJob is not idempotent: before sending it again, the client lists the job's executions
  and takes the one whose submission-id label (copied from the job's execution template) is
  this submission's.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from gcpjobs.clients.base import AsyncJobClientBase, SyncJobClientBase, Transport, WaitOptions
from gcpjobs.clients.connection import client_info
from gcpjobs.clients.convert import container_of, execution_to_status
from gcpjobs.clients.gapic import ThreadedGapicClient, close_gapic
from gcpjobs.clients.retry import call_with_retry
from gcpjobs.clients.target import Target
from gcpjobs.core.ratelimit import RateLimit, acquire
from gcpjobs.errors import ApiError, GcpJobsError
from gcpjobs.results import Container, JobResult, JobStatus
from gcpjobs.specs.labels import SUBMISSION_LABEL, new_submission_id

if TYPE_CHECKING:
    from gcpjobs.specs.cloudrun import CloudRunJob

logger = logging.getLogger(__name__)

_LOOKUP_PAGE_SIZE = 50
# `statuses` pages: the most executions one ListExecutions call returns on the emulator. The
# API documents no maximum page_size (nor whether a larger one is lowered or refused), so no
# larger page is asked for.
_STATUS_PAGE_SIZE = 100


def job_name_of(execution_name: str) -> str:
    """`projects/P/locations/L/jobs/J/executions/E` -> `projects/P/locations/L/jobs/J`."""
    return execution_name.split("/executions/", 1)[0]


# --------------------------------------------------------------------- transport adapters


def _execution_of(operation: Any) -> Any | None:
    """RunJob's operation names the execution in its metadata (an Execution) from the start."""
    try:
        metadata = operation.metadata
    except Exception:  # an operation without metadata, or of another type
        return None
    if metadata is None or not str(getattr(metadata, "name", "")):
        return None
    return metadata


class _RunApi:
    """The Cloud Run v2 calls gcpjobs makes, one attempt each (retries are ours, GAPIC's are
    off), over `JobsAsyncClient` and `ExecutionsAsyncClient` (gRPC) or the REST clients in
    threads (`gapic.py`).

    Long-running operations of create, update and delete are awaited (the job must be ready
    before it runs); those of run and cancel are not: the execution is what gets watched.
    """

    def __init__(self, jobs: Any, executions: Any) -> None:
        self._jobs = jobs
        self._executions = executions

    async def create_job(self, parent: str, job: Any, job_id: str, timeout: float) -> Any:
        operation = await self._jobs.create_job(
            parent=parent, job=job, job_id=job_id, retry=None, timeout=timeout
        )
        return await operation.result(timeout=timeout)

    async def update_job(self, job: Any, timeout: float) -> Any:
        operation = await self._jobs.update_job(job=job, retry=None, timeout=timeout)
        return await operation.result(timeout=timeout)

    async def get_job(self, name: str, timeout: float) -> Any:
        return await self._jobs.get_job(name=name, retry=None, timeout=timeout)

    async def delete_job(self, name: str, timeout: float) -> None:
        operation = await self._jobs.delete_job(name=name, retry=None, timeout=timeout)
        await operation.result(timeout=timeout)

    async def run_job(self, name: str, timeout: float) -> Any | None:
        operation = await self._jobs.run_job(name=name, retry=None, timeout=timeout)
        return _execution_of(operation)

    async def get_execution(self, name: str, timeout: float) -> Any:
        return await self._executions.get_execution(name=name, retry=None, timeout=timeout)

    async def list_executions(
        self, parent: str, page_size: int, page_token: str, timeout: float
    ) -> tuple[builtins.list[Any], str]:
        from google.cloud.run_v2 import ListExecutionsRequest

        pager = await self._executions.list_executions(
            request=ListExecutionsRequest(
                parent=parent, page_size=page_size, page_token=page_token
            ),
            retry=None, timeout=timeout,
        )
        return builtins.list(pager.executions), str(pager.next_page_token)

    async def cancel_execution(self, name: str, timeout: float) -> None:
        await self._executions.cancel_execution(name=name, retry=None, timeout=timeout)

    async def close(self) -> None:
        # Both clients share one channel on the emulator; closing it twice is harmless.
        await close_gapic(self._jobs)
        await close_gapic(self._executions)


def _run_api(target: Target, transport: Transport, credentials: Any) -> _RunApi:
    from google.cloud.run_v2.services.executions import (
        ExecutionsAsyncClient,
        ExecutionsClient,
    )
    from google.cloud.run_v2.services.jobs import JobsAsyncClient, JobsClient

    info = client_info()
    if transport == "rest":
        if target.is_emulator:
            from google.auth.credentials import AnonymousCredentials

            options = {"api_endpoint": str(target.rest_endpoint)}
            credentials = AnonymousCredentials()
        else:
            options = {"api_endpoint": target.run_endpoint()}
        return _RunApi(
            ThreadedGapicClient(JobsClient(
                transport="rest", client_options=options, credentials=credentials,
                client_info=info,
            )),
            ThreadedGapicClient(ExecutionsClient(
                transport="rest", client_options=options, credentials=credentials,
                client_info=info,
            )),
        )
    if target.is_emulator:
        import grpc
        from google.cloud.run_v2.services.executions.transports import (
            ExecutionsGrpcAsyncIOTransport,
        )
        from google.cloud.run_v2.services.jobs.transports import JobsGrpcAsyncIOTransport

        # A plaintext server needs an explicit insecure channel: `api_endpoint` alone speaks TLS.
        channel = grpc.aio.insecure_channel(target.run_endpoint())
        return _RunApi(
            JobsAsyncClient(transport=JobsGrpcAsyncIOTransport(channel=channel), client_info=info),
            ExecutionsAsyncClient(
                transport=ExecutionsGrpcAsyncIOTransport(channel=channel), client_info=info
            ),
        )
    options = {"api_endpoint": target.run_endpoint()}
    return _RunApi(
        JobsAsyncClient(client_options=options, credentials=credentials, client_info=info),
        ExecutionsAsyncClient(client_options=options, credentials=credentials, client_info=info),
    )


# ------------------------------------------------------------------------------ the client


class AsyncCloudRunClient(AsyncJobClientBase[_RunApi]):
    """Run, inspect, cancel and wait for Cloud Run job executions.

    The names it takes and returns are executions'
    (`projects/P/locations/L/jobs/J/executions/E`, or just `E`). Settings: see
    `AsyncJobClientBase`.
    """

    @functools.cached_property
    def _listing_positions(self) -> dict[str, dict[str, int]]:
        """`statuses`' memory: per ListExecutions parent, where each name of the last call
        was in that listing (see `_status_pages`)."""
        return {}

    def resource_name(self, execution: str, region: str | None = None) -> str:
        """`"job-abc12"` -> `projects/P/locations/R/jobs/job/executions/job-abc12`.

        Cloud Run names an execution after its job plus a dash and a suffix, so the bare
        execution id is enough.
        """
        # Not GAPIC's `execution_path`/`parse_execution_path`, as for Vertex's names (see
        # AsyncVertexClient.resource_name).
        text = execution.strip()
        if text.startswith("projects/"):
            parts = text.split("/")
            if (len(parts) != 8 or parts[2] != "locations" or parts[4] != "jobs"
                    or parts[6] != "executions" or not all(parts)):
                raise GcpJobsError(
                    f"{execution!r} is not an execution name; give an execution id or "
                    "projects/PROJECT/locations/REGION/jobs/JOB/executions/EXECUTION"
                )
            return text
        job, dash, suffix = text.rpartition("-")
        if not (job and dash and suffix) or "/" in text:
            raise GcpJobsError(
                f"{execution!r} is not a Cloud Run execution id (JOB-SUFFIX, e.g. my-job-x7k2p); "
                "`gcpjobs list` shows them"
            )
        where = region or self.region
        return f"projects/{self.target.project}/locations/{where}/jobs/{job}/executions/{text}"

    # ---------------------------------------------------------------------------- plumbing

    async def _api(self, region: str | None = None) -> _RunApi:
        """The adapter (one per event loop): Cloud Run's endpoint serves every region."""
        target = await self._resolved_target()
        return await self._apis.get(
            target.run_endpoint(),
            lambda credentials: _run_api(target, self.transport, credentials),
            credentials_file=target.credentials_file,
            needs_credentials=not target.is_emulator,
            credentials=self.credentials,
        )

    # ------------------------------------------------------------------------------- calls

    async def create(self, job: CloudRunJob, *, submission_id: str | None = None) -> JobStatus:
        """Create (or, with `keep_job`, update) the Job and start one execution of it; the
        execution's status right after it was started. Never starts it twice (see module)."""
        resolving = self._start_resolving_target()
        from gcpjobs.protos.cloudrun import build_create_request, job_id_for

        submission_id = submission_id or new_submission_id()
        target = await resolving
        request = build_create_request(job, job.project or target.project, submission_id)
        from google.cloud.run_v2.services.jobs import JobsClient

        job_name = JobsClient.job_path(
            **JobsClient.parse_common_location_path(request.parent),
            job=job_id_for(job, submission_id),
        )
        await self._ensure_job(request, job_name, submission_id, keep_job=job.keep_job)
        status = await self._start_execution(job_name, submission_id)
        self._record_submission(status, request, submission_id, job)
        return status

    async def _ensure_job(
        self, request: Any, job_name: str, submission_id: str, *, keep_job: bool
    ) -> None:
        api = await self._api()
        timeout = self.retry_policy.call_timeout

        async def find(deadline: float, error: BaseException | None = None) -> bool | None:
            try:
                existing = await call_with_retry(
                    lambda: api.get_job(job_name, timeout), self._lookup_policy(deadline),
                    "GetJob",
                )
            except ApiError as error:
                if error.code == "NOT_FOUND":
                    return None
                raise
            return True if existing.labels.get(SUBMISSION_LABEL) == submission_id else None

        try:
            await self._send_once_or_find(
                "CreateJob",
                lambda: api.create_job(request.parent, request.job, request.job_id, timeout),
                find, submission_id=submission_id, what="job",
            )
        except ApiError as error:
            if error.code != "ALREADY_EXISTS":
                raise
            if await find(time.monotonic() + self.retry_policy.deadline):
                return  # an earlier attempt of this submission made it
            if not keep_job:
                raise
            # keep_job: the job is reused; this run's template replaces the last one.
            job_type = type(request.job)
            job = job_type.deserialize(job_type.serialize(request.job))  # a copy, not a view
            job.name = job_name
            await self._call("UpdateJob", lambda api: api.update_job(job, timeout), name=job_name)

    async def _start_execution(self, job_name: str, submission_id: str) -> JobStatus:
        api = await self._api()
        timeout = self.retry_policy.call_timeout

        async def find(deadline: float, error: BaseException | None = None) -> Any | None:
            return await self._find_execution(api, job_name, submission_id, deadline)

        async def send() -> Any:
            execution = await api.run_job(job_name, timeout)
            if execution is None:  # no metadata on the operation: find it by its label
                execution = await find(time.monotonic() + self.retry_policy.deadline)
                if execution is None:
                    raise ApiError(
                        "INTERNAL", f"RunJob on {job_name} named no execution", method="RunJob"
                    )
            return execution

        execution = await self._send_once_or_find(
            "RunJob", send, find, submission_id=submission_id, what="execution"
        )
        return execution_to_status(execution)

    async def _find_execution(
        self, api: _RunApi, job_name: str, submission_id: str, deadline: float
    ) -> Any | None:
        """This submission's execution of `job_name`, if one was started. If even the lookup
        fails we cannot know, so we stop instead of risking a second execution."""
        token = ""
        try:
            while True:
                executions, token = await call_with_retry(
                    functools.partial(
                        api.list_executions, job_name, _LOOKUP_PAGE_SIZE, token,
                        self.retry_policy.call_timeout,
                    ),
                    self._lookup_policy(deadline),
                    "ListExecutions",
                )
                for execution in executions:
                    if execution.labels.get(SUBMISSION_LABEL) == submission_id:
                        return execution
                if not token:
                    return None
        except ApiError as error:
            raise ApiError(
                error.code,
                f"{error.message}; a RunJob failed and the execution may have started: look for "
                f"label {SUBMISSION_LABEL}={submission_id} on {job_name}'s executions before "
                "running it again",
                method="RunJob",
            ) from error

    async def _read(self, full: str) -> Any:
        timeout = self.retry_policy.call_timeout
        return await self._call(
            "GetExecution", lambda api: api.get_execution(full, timeout), name=full
        )

    def _status_of(self, message: Any) -> JobStatus:
        return execution_to_status(message)

    def _container_of(self, message: Any) -> Container:
        """The first container the execution runs (command, args, plain env, image)."""
        spec = message.template.containers[0]
        return container_of(spec, spec.image)

    async def list(
        self, *, region: str | None = None, job: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[JobStatus]:
        """Executions, newest first: of one job (its id), or of every job in the region."""
        target = await self._resolved_target()
        from google.cloud.run_v2.services.jobs import JobsClient

        parent = JobsClient.job_path(target.project, region or self.region, job or "-")
        pages = self._pages(parent, page_size or 0)
        async with contextlib.aclosing(pages):
            async for page in pages:
                for status in page:
                    yield status

    async def _pages(
        self, parent: str, page_size: int, rate_limit: RateLimit | None = None
    ) -> AsyncGenerator[builtins.list[JobStatus], None]:
        """ListExecutions under `parent` (a job, or `.../jobs/-` for all), newest first, one
        page per call (each with its own retries, each first taking a slot of `rate_limit`)."""
        token = ""
        timeout = self.retry_policy.call_timeout
        while True:
            await acquire(rate_limit)
            executions, token = await self._call(
                "ListExecutions",
                functools.partial(_RunApi.list_executions, parent=parent, page_size=page_size,
                                  page_token=token, timeout=timeout),
            )
            yield [execution_to_status(execution) for execution in executions]
            if not token:
                return

    # `statuses` (the base's): per project and region, ListExecutions of every job
    # (`.../jobs/-`, newest first; it has no filter) is read page by page only until all of
    # that region's names have been seen, ended ones included, or until one GetExecution for
    # each name not yet seen is expected to cost fewer calls than the pages still needed to
    # reach them (names behind many executions that are not wanted: other processes', kept
    # jobs' history; see `_status_pages`); those names get a Get each. So a call costs about
    # min(pages down to the oldest name, Gets of the names past the pages read). A watcher
    # reports the first pages' changes without waiting for the last page.

    def _status_scope(self, name: str) -> str:
        return _listing_scope(name)

    async def _status_pages(
        self, parent: str, wanted: set[str], rate_limit: RateLimit | None
    ) -> AsyncGenerator[builtins.list[JobStatus], None]:
        """`statuses`' pages of ListExecutions under `parent` (`.../jobs/-`), newest first, for
        as long as reading on is expected to cost fewer calls than one GetExecution for each
        wanted name not yet seen (those the caller then gets; see `_worth_listing`).

        The estimate uses where each wanted name was in the previous listing (kept per scope,
        for the names of the last call only), moved down by as many places as the names seen
        so far have moved (executions created since). It only decides how each name is read,
        never whether: every name is either on a page read now or fetched.
        """
        positions = self._listing_positions.setdefault(parent, {})
        seen: dict[str, int] = {}
        unseen = set(wanted)
        shift = index = 0
        token = ""
        timeout = self.retry_policy.call_timeout
        try:
            while unseen and _worth_listing(unseen, positions, shift, index):
                await acquire(rate_limit)
                executions, token = await self._call(
                    "ListExecutions",
                    functools.partial(_RunApi.list_executions, parent=parent,
                                      page_size=_STATUS_PAGE_SIZE,
                                      page_token=token, timeout=timeout),
                )
                page = [execution_to_status(execution) for execution in executions]
                for offset, status in enumerate(page):
                    if status.name in unseen:
                        unseen.discard(status.name)
                        seen[status.name] = index + offset
                        if status.name in positions:
                            shift = index + offset - positions[status.name]
                index += len(page)
                yield page
                if not token:
                    return
        finally:
            # Next time: where these names were now, or (not seen) are expected to be.
            self._listing_positions[parent] = {
                name: seen[name] if name in seen else positions[name] + shift
                for name in wanted if name in seen or name in positions
            }

    # `updates` is the base's None: ListExecutions has no filter, so there is no cheaper way
    # to find what changed than `statuses()` (which callers use instead).

    async def cancel(self, name: str) -> None:
        """Ask the service to cancel the execution; it ends CANCELLED later (see `wait`). A
        retried cancel whose first attempt landed finds the execution already ending."""
        full = await self._full_name(name)
        timeout = self.retry_policy.call_timeout
        await self._cancel(
            "CancelExecution", full, lambda api: api.cancel_execution(full, timeout),
            only_after_retry=False,
        )

    async def delete(self, name: str) -> None:
        """Delete the Job (and with it its executions), waiting until it is gone. `name` is
        the job's or one of its executions'; a job already gone is not an error."""
        full = name if "/executions/" not in name else job_name_of(name)
        if not full.startswith("projects/"):
            full = job_name_of(await self._full_name(name))
        timeout = self.retry_policy.call_timeout
        try:
            await self._call("DeleteJob", lambda api: api.delete_job(full, timeout), name=full)
        except ApiError as error:
            if error.code != "NOT_FOUND":
                raise

    # Its name before every kind's client had `delete`.
    delete_job = delete

    async def wait(
        self, name: str, *, delete_job: bool = False, **options: Unpack[WaitOptions]
    ) -> JobResult:
        """Poll until the execution ends, reporting every state change seen; the result.

        `options` are the base's (`on_change`, `timeout`, `known`): `known` is a status the
        caller already has (`create`'s reply), reported first without fetching. `delete_job`
        deletes the Job once the execution has ended (what `run` does unless the spec keeps
        it). `timeout` raises `WaitTimeoutError` and leaves it running.
        """
        result = await super().wait(name, **options)
        if delete_job:
            await self.delete(await self._full_name(name))
        return result

    async def finish(self, job: CloudRunJob, name: str) -> None:
        """Delete the Job of the execution `name` once it has ended, unless `job.keep_job`
        (the run history keeps how it ended)."""
        await self._settle_history(name)
        if not job.keep_job:
            await self.delete(name)


def _listing_scope(name: str) -> str:
    """An execution's ListExecutions parent in `statuses`: every job of its project and region."""
    return f"{name.split('/jobs/', 1)[0]}/jobs/-"


def _worth_listing(
    unseen: Collection[str], positions: dict[str, int], shift: int, index: int
) -> bool:
    """Whether to read on from list position `index` rather than Get each of `unseen`.

    ListExecutions has no filter: reaching a name costs a page per `_STATUS_PAGE_SIZE`
    executions before it, wanted or not. Reading on costs at least the pages down to the
    furthest name whose place is known (the previous listing's, moved by `shift`), and at
    least enough pages to hold the names whose place is not; the Gets cost one call each.
    A tie goes to the Gets: their count is exact, the pages' only a lower bound.
    """
    known = [positions[name] + shift for name in unseen if name in positions]
    unknown = len(unseen) - len(known)
    furthest = max(known, default=index - 1)
    pages = max(
        -(-(furthest + 1 - index) // _STATUS_PAGE_SIZE),
        -(-unknown // _STATUS_PAGE_SIZE),
        1,
    )
    return pages < len(unseen)


# ------------------------------------------------------------------------- the sync facade


class CloudRunClient(SyncJobClientBase[AsyncCloudRunClient]):
    """`AsyncCloudRunClient` for scripts and notebooks: the same methods, blocking (see
    `SyncJobClientBase`, which makes them)."""

    async_client_type = AsyncCloudRunClient
    thread_name = "gcpjobs-cloud-run-client"


__all__ = ["AsyncCloudRunClient", "CloudRunClient"]
