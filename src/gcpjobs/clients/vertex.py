"""The Vertex AI custom-job client: `AsyncVertexClient`, and `VertexClient` for scripts.

Both speak to `google.cloud.aiplatform.v1.JobService` through the official GAPIC client (never
the slow high-level `google.cloud.aiplatform` SDK), on real Vertex AI or on a gcpjobs
emulator (see `target.py` for which).

Transports:
- gRPC: `JobServiceAsyncClient` (an insecure channel for the emulator, TLS + credentials on GCP).
- REST: the sync `JobServiceClient(transport="rest")` run in a worker thread
  (`asyncio.to_thread`). The GAPIC async REST transport needs `aiohttp` and google-auth's aio
  extras, which gcpjobs does not depend on; a thread per in-flight REST call is the honest
  way to keep the event loop free without them.

Safety: every create carries a submission-id label. When a create fails transiently the
server may have made the job and lost only the reply, so before sending it again the client
lists jobs with that label and returns the one it finds: a retry never makes a second job.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from datetime import datetime, timezone
from typing import Any

from gcpjobs.clients.base import AsyncJobClientBase, SyncJobClientBase, Transport
from gcpjobs.clients.connection import client_info
from gcpjobs.clients.convert import container_of, custom_job_to_status
from gcpjobs.clients.gapic import ThreadedGapicClient, close_gapic
from gcpjobs.clients.retry import RetryPolicy, call_with_retry, error_code_name
from gcpjobs.clients.target import Target
from gcpjobs.core.ratelimit import RateLimit, acquire
from gcpjobs.errors import ApiError, GcpJobsError
from gcpjobs.results import Container, JobStatus
from gcpjobs.specs.labels import SUBMISSION_LABEL, new_submission_id
from gcpjobs.specs.vertex import VertexJob
from gcpjobs.states import JobState

logger = logging.getLogger(__name__)

_LOOKUP_PAGE_SIZE = 10
# Large pages for `statuses`: one call covers a hundred running jobs (the emulator's maximum,
# and a size Vertex serves).
_STATUS_PAGE_SIZE = 100


def _unended_filter() -> str:
    """The ListCustomJobs filter for jobs gcpjobs submitted that have not ended: what a
    watcher polls. OR binds tighter than AND in AIP-160, the brackets only help the reader."""
    states = " OR ".join(
        f"state=JOB_STATE_{state.value}"
        for state in JobState
        if not state.is_terminal and state is not JobState.UNSPECIFIED
    )
    return f"labels.{SUBMISSION_LABEL}:* AND ({states})"


UNENDED_FILTER = _unended_filter()


def updated_since_filter(since: datetime) -> str:
    """The ListCustomJobs filter for jobs gcpjobs submitted whose `update_time` is at or after
    `since` (ended ones included) and that have left QUEUED: what a watcher polls between
    full listings. A job is QUEUED only from its creation until its first change, so a QUEUED
    job is one the caller either has not observed (and checks otherwise) or has observed
    QUEUED already: leaving them out keeps a burst of submissions from filling the pages."""
    stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (f'labels.{SUBMISSION_LABEL}:* AND update_time>="{stamp}" '
            f"AND state!=JOB_STATE_{JobState.QUEUED.value}")


def submission_filter(submission_id: str) -> str:
    """The ListCustomJobs filter that finds the job of one submission."""
    return f"labels.{SUBMISSION_LABEL}={submission_id}"


def parent_of(name: str) -> str:
    """`projects/P/locations/R/customJobs/ID` -> `projects/P/locations/R`."""
    return name.split("/customJobs/", 1)[0]


def region_of(name: str) -> str | None:
    """`projects/P/locations/R/customJobs/ID` -> R (None for anything else)."""
    parts = name.split("/")
    if len(parts) >= 4 and parts[0] == "projects" and parts[2] == "locations":
        return parts[3]
    return None


# --------------------------------------------------------------------- transport adapters


def _list_request(parent: str, filter: str, page_size: int, page_token: str) -> Any:
    from google.cloud.aiplatform_v1 import ListCustomJobsRequest

    return ListCustomJobsRequest(
        parent=parent, filter=filter, page_size=page_size, page_token=page_token
    )


class _JobApi:
    """The five JobService calls, one attempt each (retries are ours, so GAPIC's are off), over
    `JobServiceAsyncClient` (gRPC) or the REST `JobServiceClient` in threads (`gapic.py`)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def create_custom_job(self, parent: str, custom_job: Any, timeout: float) -> Any:
        return await self._client.create_custom_job(
            parent=parent, custom_job=custom_job, retry=None, timeout=timeout
        )

    async def get_custom_job(self, name: str, timeout: float) -> Any:
        return await self._client.get_custom_job(name=name, retry=None, timeout=timeout)

    async def list_page(
        self, parent: str, filter: str, page_size: int, page_token: str, timeout: float
    ) -> tuple[builtins.list[Any], str]:
        pager = await self._client.list_custom_jobs(
            request=_list_request(parent, filter, page_size, page_token), retry=None, timeout=timeout
        )
        # One page per call (the pager forwards attributes to that page's response), so each
        # page gets its own retries.
        return builtins.list(pager.custom_jobs), str(pager.next_page_token)

    async def cancel_custom_job(self, name: str, timeout: float) -> None:
        await self._client.cancel_custom_job(name=name, retry=None, timeout=timeout)

    async def delete_custom_job(self, name: str, timeout: float) -> None:
        operation = await self._client.delete_custom_job(name=name, retry=None, timeout=timeout)
        await operation.result(timeout=timeout)

    async def close(self) -> None:
        await close_gapic(self._client)


def _emulator_api(target: Target, transport: Transport) -> _JobApi:
    from google.cloud.aiplatform_v1.services.job_service import (
        JobServiceAsyncClient,
        JobServiceClient,
    )

    if transport == "rest":
        from google.auth.credentials import AnonymousCredentials

        return _JobApi(ThreadedGapicClient(
            JobServiceClient(
                transport="rest",
                client_options={"api_endpoint": target.rest_endpoint},
                credentials=AnonymousCredentials(),
                client_info=client_info(),
            )
        ))
    import grpc
    from google.cloud.aiplatform_v1.services.job_service.transports import (
        JobServiceGrpcAsyncIOTransport,
    )

    # A plaintext server needs an explicit insecure channel: `api_endpoint` alone speaks TLS.
    channel = grpc.aio.insecure_channel(target.grpc_address)
    return _JobApi(
        JobServiceAsyncClient(
            transport=JobServiceGrpcAsyncIOTransport(channel=channel), client_info=client_info()
        )
    )


def _gcp_api(endpoint: str, credentials: Any, transport: Transport) -> _JobApi:
    from google.cloud.aiplatform_v1.services.job_service import (
        JobServiceAsyncClient,
        JobServiceClient,
    )

    options = {"api_endpoint": endpoint}
    if transport == "rest":
        return _JobApi(ThreadedGapicClient(
            JobServiceClient(
                transport="rest", client_options=options, credentials=credentials,
                client_info=client_info(),
            )
        ))
    return _JobApi(
        JobServiceAsyncClient(
            client_options=options, credentials=credentials, client_info=client_info()
        )
    )


# ------------------------------------------------------------------------------ the client


class AsyncVertexClient(AsyncJobClientBase[_JobApi]):
    """Create, inspect, cancel and wait for Vertex AI custom jobs (settings: see
    `AsyncJobClientBase`)."""

    _no_update_filter = False  # set when the server refuses `updated_since_filter` (`updates`)

    def resource_name(self, job_id_or_name: str, region: str | None = None) -> str:
        """`"123"` -> `projects/P/locations/R/customJobs/123`; a full name is returned as is."""
        # Not GAPIC's `custom_job_path`/`parse_custom_job_path`: names are checked before any
        # call (a mistyped one fails at once), and importing the GAPIC client takes seconds;
        # its pattern would also take `/` inside a part.
        text = job_id_or_name.strip()
        if text.startswith("projects/"):
            parts = text.split("/")
            if len(parts) != 6 or parts[2] != "locations" or parts[4] != "customJobs" or not all(parts):
                raise GcpJobsError(
                    f"{job_id_or_name!r} is not a custom job name; give a job id or "
                    "projects/PROJECT/locations/REGION/customJobs/ID"
                )
            return text
        if not text or "/" in text:
            raise GcpJobsError(
                f"{job_id_or_name!r} is not a job id; give the number at the end of the job's "
                "name, or the full projects/.../customJobs/ID name"
            )
        return f"projects/{self.target.project}/locations/{region or self.region}/customJobs/{text}"

    # ------------------------------------------------------------------------- GAPIC cache

    async def _api(self, region: str | None) -> _JobApi:
        """The transport adapter for `region` (one per endpoint and event loop)."""
        target = await self._resolved_target()
        endpoint = target.api_endpoint(region or self.region)

        def build(credentials: Any) -> _JobApi:
            if target.is_emulator:
                return _emulator_api(target, self.transport)
            return _gcp_api(endpoint, credentials, self.transport)

        return await self._apis.get(
            endpoint, build, credentials_file=target.credentials_file,
            needs_credentials=not target.is_emulator, credentials=self.credentials,
        )

    # ------------------------------------------------------------------------------- calls

    async def create(self, job: VertexJob, *, submission_id: str | None = None) -> JobStatus:
        """Submit `job`; its status right after creation. Never creates it twice (see module)."""
        resolving = self._start_resolving_target()
        from gcpjobs.protos.vertex import build_custom_job, parent_for

        submission_id = submission_id or new_submission_id()
        custom_job = build_custom_job(job, submission_id)
        target = await resolving
        parent = parent_for(job.project or target.project, job.region)
        api = await self._api(job.region)
        timeout = self.retry_policy.call_timeout

        async def send() -> JobStatus:
            return custom_job_to_status(
                await api.create_custom_job(parent, custom_job, timeout)
            )

        async def find(deadline: float, error: BaseException) -> JobStatus | None:
            return await self._find_submission(api, parent, submission_id, deadline, error)

        status = await self._send_once_or_find(
            "CreateCustomJob", send, find, submission_id=submission_id, what="job"
        )
        self._record_submission(status, custom_job, submission_id, job)
        return status

    async def _find_submission(
        self, api: _JobApi, parent: str, submission_id: str, deadline: float,
        create_error: BaseException,
    ) -> JobStatus | None:
        """The job this submission already made, if any. If even the lookup fails we cannot
        know, so we stop instead of risking a second job."""
        policy = self._lookup_policy(deadline)
        try:
            jobs, _ = await call_with_retry(
                lambda: api.list_page(
                    parent, submission_filter(submission_id), _LOOKUP_PAGE_SIZE, "",
                    policy.call_timeout,
                ),
                policy,
                "ListCustomJobs",
            )
        except ApiError as error:
            raise ApiError(
                error.code,
                f"{error.message}; a CreateCustomJob failed ({error_code_name(create_error)}) and "
                f"the job may exist: look for label {SUBMISSION_LABEL}={submission_id} "
                "before submitting again",
                method="CreateCustomJob",
            ) from error
        if not jobs:
            return None
        statuses = [custom_job_to_status(job) for job in jobs]
        # Only one can exist; if the server ever made two, the first one made is "the" job.
        return min(statuses, key=lambda status: (status.create_time is None, status.create_time))

    async def _read(self, full: str) -> Any:
        return await self._call(
            "GetCustomJob",
            lambda api: api.get_custom_job(full, self.retry_policy.call_timeout),
            region=region_of(full), name=full,
        )

    def _status_of(self, message: Any) -> JobStatus:
        return custom_job_to_status(message)

    def _container_of(self, message: Any) -> Container:
        """The container the job's primary replica runs (command, args, env, image)."""
        spec = message.job_spec.worker_pool_specs[0].container_spec
        return container_of(spec, spec.image_uri)

    async def list(
        self,
        *,
        region: str | None = None,
        filter: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[JobStatus]:
        """Jobs in the project and region (the server's order), page by page."""
        target = await self._resolved_target()
        from google.cloud.aiplatform_v1.services.job_service import JobServiceClient

        parent = JobServiceClient.common_location_path(target.project, region or self.region)
        pages = self._pages(parent, filter or "", page_size or 0)
        async with contextlib.aclosing(pages):
            async for page in pages:
                for status in page:
                    yield status

    async def _pages(
        self, parent: str, filter: str, page_size: int, rate_limit: RateLimit | None = None
    ) -> AsyncGenerator[builtins.list[JobStatus], None]:
        """ListCustomJobs under `parent`, one page per call (each with its own retries, each
        first taking a slot of `rate_limit`)."""
        token = ""
        while True:
            await acquire(rate_limit)
            jobs, token = await self._call(
                "ListCustomJobs",
                functools.partial(
                    _JobApi.list_page, parent=parent, filter=filter, page_size=page_size,
                    page_token=token, timeout=self.retry_policy.call_timeout,
                ),
                region=region_of(parent),
            )
            yield [custom_job_to_status(job) for job in jobs]
            if not token:
                return

    # `statuses` (the base's): per project and region, ONE ListCustomJobs of the jobs gcpjobs
    # submitted that have not ended (`UNENDED_FILTER`; more pages only past a hundred of them)
    # covers every running job; a name it does not show has normally just ended and gets one
    # GetCustomJob. So a watcher's cycle costs a list call per region however many jobs run,
    # plus a Get per job that ended. Jobs gcpjobs did not submit are found too, at the price
    # of a Get each time.

    def _status_scope(self, name: str) -> str:
        return parent_of(name)

    def _status_pages(
        self, scope: str, wanted: set[str], rate_limit: RateLimit | None
    ) -> AsyncGenerator[builtins.list[JobStatus], None]:
        return self._pages(scope, UNENDED_FILTER, _STATUS_PAGE_SIZE, rate_limit)

    async def updates(
        self, names: Collection[str], since: datetime, *, rate_limit: RateLimit | None = None
    ) -> dict[str, JobStatus] | None:
        """The status of those of `names` that gcpjobs submitted and that changed at or after
        `since` (an aware datetime, compared with the server's `update_time`): per project and
        region, ListCustomJobs of the jobs updated since then (`updated_since_filter`), ended
        ones included, so a cycle costs pages in proportion to what changed, not to how many
        jobs are watched. A name missing from the result has not changed since `since`, or is
        still QUEUED, or does not carry gcpjobs' submission label, or no longer exists:
        callers check names they have not observed, and every name from time to time, with
        `statuses()`.

        None when the server refuses to filter on `update_time` (the Vertex documents list
        only `create_time` comparisons; the emulator supports both): callers use
        `statuses()` instead, and this client does not ask again.
        """
        if self._no_update_filter:
            return None
        await self._resolved_target()
        wanted = {self.resource_name(name) for name in names}
        found: dict[str, JobStatus] = {}
        filter = updated_since_filter(since)
        try:
            for parent in sorted({parent_of(name) for name in wanted}):
                pages = self._pages(parent, filter, _STATUS_PAGE_SIZE, rate_limit)
                async with contextlib.aclosing(pages):
                    async for page in pages:
                        found.update((s.name, s) for s in page if s.name in wanted)
        except ApiError as error:
            if error.code != "INVALID_ARGUMENT":  # our filter is the one thing it could refuse
                raise
            logger.warning("the server refuses update_time filters (%s); the watcher lists "
                           "every unended job in each cycle instead", error.message)
            self._no_update_filter = True
            return None
        return found

    async def cancel(self, name: str) -> None:
        """Ask the service to cancel; the job ends CANCELLED later (see `wait`).

        A job that has already ended is refused with FAILED_PRECONDITION, except when our own
        earlier attempt may have cancelled it (its reply was lost) and the job did end
        cancelled: that cancel succeeded.
        """
        full = await self._full_name(name)
        await self._cancel(
            "CancelCustomJob", full,
            lambda api: api.cancel_custom_job(full, self.retry_policy.call_timeout),
            region=region_of(full), only_after_retry=True,
        )

    async def delete(self, name: str) -> None:
        """Delete an ended job's record, waiting for the delete operation to finish."""
        full = await self._full_name(name)
        await self._call(
            "DeleteCustomJob",
            lambda api: api.delete_custom_job(full, self.retry_policy.call_timeout),
            region=region_of(full), name=full,
        )


# ------------------------------------------------------------------------- the sync facade


class VertexClient(SyncJobClientBase[AsyncVertexClient]):
    """`AsyncVertexClient` for scripts and notebooks: the same methods, blocking (see
    `SyncJobClientBase`, which makes them)."""

    async_client_type = AsyncVertexClient
    thread_name = "gcpjobs-vertex-client"


__all__ = ["AsyncVertexClient", "RetryPolicy", "Target", "VertexClient"]
