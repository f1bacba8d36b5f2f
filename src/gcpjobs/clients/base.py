"""What every kind's client shares above the wire: the abstract async client (settings, where
requests go, retries, the safe re-send of calls that are not idempotent, get / container /
statuses / wait / run / finish, the run-history hooks) and the sync facade made from it.

Each kind adds its transport adapter (`_api`), its names and its calls (see
`AsyncJobClientBase`); this module knows no API.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterator,
)
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypedDict, TypeVar

from typing_extensions import Self

from gcpjobs.clients.connection import BackgroundLoop, LoopBoundApis
from gcpjobs.clients.retry import (
    RetryPolicy,
    call_with_retry,
    error_code_name,
    is_transient,
    server_message,
    to_api_error,
)
from gcpjobs.clients.target import (
    EMULATOR_HOST_ENV,
    Target,
    configured_project,
    resolve_target,
)
from gcpjobs.core.poll import OnChange, PollInterval, wait_until_terminal
from gcpjobs.core.ratelimit import RateLimit, acquire
from gcpjobs.errors import ApiError, GcpJobsError, JobNotFoundError
from gcpjobs.results import Container, JobResult, JobStatus
from gcpjobs.specs.labels import SUBMISSION_LABEL
from gcpjobs.states import JobState

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

Transport = Literal["grpc", "rest"]
T = TypeVar("T")

logger = logging.getLogger("gcpjobs.clients")


# Gets that `statuses` sends at once for jobs a listing did not show (normally jobs that have
# just ended): enough to keep up when many end together, few enough not to hit read quotas.
_GET_CONCURRENCY = 8


async def statuses_by_listing(
    names: Collection[str],
    *,
    scope_of: Callable[[str], str],
    listing: Callable[[str], AsyncGenerator[list[JobStatus], None]],
    get: Callable[[str], Awaitable[JobStatus]],
    rate_limit: RateLimit | None = None,
    on_status: Callable[[str, JobStatus], None] | None = None,
) -> dict[str, JobStatus]:
    """The status of each of `names` (full resource names) with as few calls as possible.

    Names are grouped by `scope_of(name)` (a list call's parent); `listing(scope)` yields that
    scope's pages, and is read only until every wanted name has been seen. Names no listing
    showed get one `get(name)` each; those that do not exist (NOT_FOUND) are left out of the
    result. Other errors propagate (ApiError, after the client's retries). Each Get first
    takes a slot of `rate_limit` (the listing takes its own: pass the limit to it too).
    `on_status(name, status)` is called for each name as soon as its page or Get arrives (again if a
    shifting listing shows a name twice), so a caller can act on the first pages of a long
    listing before the last one is read.
    """
    scopes: dict[str, set[str]] = {}
    for name in names:
        scopes.setdefault(scope_of(name), set()).add(name)
    found: dict[str, JobStatus] = {}

    def record(name: str, status: JobStatus) -> None:
        found[name] = status
        if on_status is not None:
            on_status(name, status)

    for scope, wanted in scopes.items():
        pages = listing(scope)
        async with contextlib.aclosing(pages):
            async for page in pages:
                for status in page:
                    if status.name in wanted:
                        record(status.name, status)
                if wanted <= found.keys():
                    break
    missing = [name for wanted in scopes.values() for name in wanted if name not in found]
    limit = asyncio.Semaphore(_GET_CONCURRENCY)

    async def fetch(name: str) -> None:
        async with limit:
            await acquire(rate_limit)
            try:
                status = await get(name)
            except JobNotFoundError:
                return
            record(name, status)

    # Every Get finishes before the first error (if any) is raised: none is left running.
    fetched = await asyncio.gather(*(fetch(name) for name in missing), return_exceptions=True)
    for outcome in fetched:
        if isinstance(outcome, BaseException):
            raise outcome
    return found


class WaitOptions(TypedDict, total=False):
    """`wait`'s keyword options, for a kind whose `wait` takes more (Cloud Run's `delete_job`)."""

    on_change: OnChange | None
    timeout: float | None
    known: JobStatus | None


class ClosableApi(Protocol):
    async def close(self) -> None: ...


Api = TypeVar("Api", bound=ClosableApi)


class AsyncJobClientBase(abc.ABC, Generic[Api]):
    """An async job client: everything every kind shares, with defaults; `Api` is the kind's
    transport adapter type (one attempt per call, no retries: those are added here).

    A kind supplies its names (`resource_name`), its adapter (`_api`), how a job is read
    (`_read`, `_status_of`, `_container_of`) and its calls (`create`, `list`, `statuses`,
    `cancel`, `delete`); `get`, `container`, `updates`, `wait`, `run`, `finish`, the run
    history and the lifecycle come from here. The CLI, steps and Prefect drive every kind
    through this one surface (`protocol.JobClient`).

    `project`/`credentials_file` are used when the target is resolved (lazily, on first use,
    unless `target` is given). `credentials` (a `google.auth.credentials.Credentials`) is used
    on GCP instead of loading a key file or Application Default Credentials, for callers that
    already hold credentials (impersonation, workload identity, a Prefect block); it is never
    needed for an emulator, and never logged. `poll_interval` fixes the delay between polls in
    `wait()`; by default polling starts fast and slows down (see `core.poll.PollInterval`).
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        region: str = "us-central1",
        target: Target | None = None,
        transport: Transport = "grpc",
        credentials_file: str | None = None,
        poll_interval: float | None = None,
        retry: RetryPolicy | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        if transport not in ("grpc", "rest"):
            raise GcpJobsError(f"transport {transport!r} is not supported; use 'grpc' or 'rest'")
        if poll_interval is not None and poll_interval <= 0:
            raise GcpJobsError(f"poll_interval must be more than 0 seconds, got {poll_interval}")
        self.project = project
        self.region = region
        self.transport: Transport = transport
        self.credentials_file = credentials_file
        self.credentials = credentials
        self.poll_interval = poll_interval
        self._retry = retry
        self._target = target
        self._target_lock = threading.Lock()
        self._apis: LoopBoundApis[Api] = LoopBoundApis()

    # ------------------------------------------------------------------- what a kind says

    @abc.abstractmethod
    def resource_name(self, name: str, region: str | None = None, /) -> str:
        """The full resource name of a job given by its id or full name (a full one is
        checked and returned as it is); GcpJobsError (one line) for anything else."""

    @abc.abstractmethod
    async def _api(self, region: str | None) -> Api:
        """The transport adapter serving `region` (None: the client's), one per endpoint and
        event loop (`self._apis`)."""

    @abc.abstractmethod
    async def _read(self, full: str) -> Any:
        """One retried Get of the job `full`: the service's message."""

    @abc.abstractmethod
    def _status_of(self, message: Any) -> JobStatus:
        """A `_read` message or a listed one, as a JobStatus."""

    @abc.abstractmethod
    def _container_of(self, message: Any) -> Container:
        """The container a `_read` message runs."""

    @abc.abstractmethod
    async def create(self, job: Any, *, submission_id: str | None = None) -> JobStatus:
        """Submit `job`; its status right after creation. Never makes it twice."""

    @abc.abstractmethod
    def _status_scope(self, name: str) -> str:
        """The parent of the list call that shows job `name` (a full name) in `statuses`."""

    @abc.abstractmethod
    def _status_pages(
        self, scope: str, wanted: set[str], rate_limit: RateLimit | None
    ) -> AsyncGenerator[list[JobStatus], None]:
        """`statuses`' listing of `scope`, page by page, each call first taking a slot of
        `rate_limit`; `wanted` are the names asked for in it (it may stop before showing
        them all: those get a Get each)."""

    @abc.abstractmethod
    async def cancel(self, name: str, /) -> None:
        """Ask the service to cancel; the job ends CANCELLED later (see `wait`)."""

    @abc.abstractmethod
    async def delete(self, name: str, /) -> None:
        """Delete what the service keeps of an ended job, waiting until it is gone."""

    # ---------------------------------------------------------------------------- settings

    @property
    def target(self) -> Target:
        """Where requests go; resolved on first use (may start the embedded emulator)."""
        with self._target_lock:
            if self._target is None:
                self._target = self._resolve_target()
                logger.debug("gcpjobs target: %s", self._target.describe())
            return self._target

    def _resolve_target(self) -> Target:
        """`resolve_target` with this client's settings. Credentials given as an object mean
        GCP, as a key file does: they never fall back to the embedded emulator, and when no
        project is configured, theirs (a service account's `project_id`) is used."""
        if self.credentials is None:
            return resolve_target(project=self.project, credentials_file=self.credentials_file)
        project = self.project
        pointed_at_emulator = bool(os.environ.get(EMULATOR_HOST_ENV))
        if project is None and not pointed_at_emulator and not configured_project(
            self.credentials_file
        ):
            own = getattr(self.credentials, "project_id", None)
            project = own if isinstance(own, str) and own else None
        return resolve_target(
            project=project, credentials_file=self.credentials_file, start_embedded=False
        )

    async def _resolved_target(self) -> Target:
        if self._target is not None:
            return self._target
        return await asyncio.to_thread(lambda: self.target)

    def _start_resolving_target(self) -> Awaitable[Target]:
        """Resolve the target in a worker thread that starts now, before the caller blocks.

        Resolving may boot the embedded emulator (a process that imports the Google protos,
        ~0.6 s); building a request imports them in this thread (as long again). Started
        first, the two overlap.
        """
        if self._target is not None:
            future: asyncio.Future[Target] = asyncio.get_running_loop().create_future()
            future.set_result(self._target)
            return future
        return asyncio.get_running_loop().run_in_executor(None, lambda: self.target)

    @property
    def retry_policy(self) -> RetryPolicy:
        if self._retry is not None:
            return self._retry
        return RetryPolicy.for_target(self.target)

    def poll_schedule(self) -> PollInterval:
        if self.poll_interval is not None:
            return PollInterval.fixed(self.poll_interval)
        return PollInterval.for_emulator() if self.target.is_emulator else PollInterval.for_gcp()

    # ------------------------------------------------------------------------------- calls

    async def _retried(
        self, api: Api, method: str, call: Callable[[Api], Coroutine[Any, Any, T]],
        *, name: str | None = None, on_error: Callable[[Exception], Any] | None = None,
    ) -> T:
        """`call(api)` with retries on transient errors; failures are one-line ApiErrors."""
        try:
            return await call_with_retry(
                lambda: call(api), self.retry_policy, method, name=name, on_error=on_error
            )
        except ApiError as error:
            raise self._with_hint(error) from error.__cause__

    def _with_hint(self, error: ApiError) -> ApiError:
        """An emulator that does not answer is most likely not running: say so."""
        target = self._target
        if error.code != "UNAVAILABLE" or target is None or not target.is_emulator:
            return error
        hint = (f"; is the emulator at {target.grpc_address} running? "
                "(`gcpjobs emulator status`)")
        return type(error)(error.code, error.message + hint, method=error.method)

    async def _send_once_or_find(
        self,
        method: str,
        send: Callable[[], Coroutine[Any, Any, T]],
        find: Callable[[float, BaseException], Coroutine[Any, Any, T | None]],
        *,
        submission_id: str,
        what: str,
    ) -> T:
        """`send()` with retries, but before each re-send `find(deadline, error)` looks for the `what`
        an earlier attempt may have made (the reply, not the request, may have been lost);
        what it finds is the answer. So a retry never makes a second one.

        Not google-api-core's `AsyncRetry` (which `_retried` uses): it can only send the same
        call again, while here a lookup must run between attempts and may end the loop with
        its own answer, and giving up must say that no `what` was found."""
        policy = self.retry_policy
        deadline = time.monotonic() + policy.deadline
        sleeps = policy.sleeps()
        attempts = 0
        while True:
            attempts += 1
            try:
                return await send()
            except Exception as error:
                if not is_transient(error):
                    if error_code_name(error) is None:
                        raise
                    raise to_api_error(error, method) from error
                last_error = error
            delay = next(sleeps)
            if time.monotonic() + delay > deadline:
                raise self._with_hint(ApiError(
                    error_code_name(last_error) or "UNKNOWN",
                    f"{server_message(last_error)} (gave up after {attempts} attempts; no {what} "
                    f"with label {SUBMISSION_LABEL}={submission_id} was found; try again later)",
                    method=method,
                )) from last_error
            logger.info(
                "%s failed with %s (attempt %d); checking for submission %s in %.2fs before "
                "sending again", method, error_code_name(last_error), attempts, submission_id,
                delay,
            )
            # Wait first: a call still in flight on the server gets time to land, so the
            # lookup sees it.
            await asyncio.sleep(delay)
            found = await find(deadline, last_error)
            if found is not None:
                logger.info("submission %s: its %s was made despite the error", submission_id,
                            what)
                return found

    def _lookup_policy(self, deadline: float) -> RetryPolicy:
        """Retries for a lookup inside `_send_once_or_find`: no longer than its deadline."""
        policy = self.retry_policy
        return dataclasses.replace(
            policy, deadline=max(deadline - time.monotonic(), policy.initial)
        )

    async def _call(
        self, method: str, call: Callable[[Api], Coroutine[Any, Any, T]], *,
        region: str | None = None, name: str | None = None,
        on_error: Callable[[Exception], Any] | None = None,
    ) -> T:
        """`call(adapter)` on `region`'s adapter, retried (see `_retried`)."""
        return await self._retried(
            await self._api(region), method, call, name=name, on_error=on_error
        )

    async def _full_name(self, name: str) -> str:
        """`resource_name`, resolving the target (if a bare id needs the project) off the loop."""
        await self._resolved_target()
        return self.resource_name(name)

    async def _cancel(
        self, method: str, full: str, call: Callable[[Api], Coroutine[Any, Any, None]], *,
        region: str | None = None, only_after_retry: bool,
    ) -> None:
        """A cancel call. An ended job is refused with FAILED_PRECONDITION; that is a success
        when the job did end cancelled, since a retried cancel's lost first attempt (or, with
        `only_after_retry=False`, any earlier cancel) may have done it."""
        retried: list[Exception] = []
        try:
            await self._call(method, call, region=region, name=full, on_error=retried.append)
        except ApiError as error:
            if error.code != "FAILED_PRECONDITION" or (only_after_retry and not retried):
                raise
            if (await self.get(full)).state not in (JobState.CANCELLING, JobState.CANCELLED):
                raise

    # ------------------------------------------------------------------------- defaults

    async def get(self, name: str, /) -> JobStatus:
        full = await self._full_name(name)
        status = self._status_of(await self._read(full))
        self._record_end(status)
        return status

    async def container(self, name: str, /) -> Container:
        """The container the job runs (command, args, plain env, image)."""
        return self._container_of(await self._read(await self._full_name(name)))

    async def statuses(
        self,
        names: Collection[str],
        /,
        *,
        rate_limit: RateLimit | None = None,
        on_status: Callable[[str, JobStatus], None] | None = None,
    ) -> dict[str, JobStatus]:
        """The current status of each of these jobs, with as few API calls as possible: per
        scope (a project and region) the kind's listing (`_status_pages`), then a Get for each
        name it did not show (see `statuses_by_listing`).

        `names` are full resource names (a bare id is taken as in `get`; the result is keyed
        by full name); names missing from the result do not exist (deleted, or never made).
        Every call first takes a slot of `rate_limit`; each status is handed to
        `on_status(name, status)` as soon as its page or Get arrives, before the whole result
        is in.
        """
        await self._resolved_target()
        full = [self.resource_name(name) for name in names]
        wanted: dict[str, set[str]] = {}
        for name in full:
            wanted.setdefault(self._status_scope(name), set()).add(name)
        return await statuses_by_listing(
            full,
            scope_of=self._status_scope,
            listing=lambda scope: self._status_pages(scope, wanted[scope], rate_limit),
            get=self.get,
            rate_limit=rate_limit,
            on_status=on_status,
        )

    async def updates(
        self, names: Collection[str], since: datetime, /, *, rate_limit: RateLimit | None = None
    ) -> dict[str, JobStatus] | None:
        """The status of those of `names` that changed at or after `since`, listing only what
        changed; a name missing from it has not changed (or is gone, or is not gcpjobs'), which
        `statuses()` tells. None (this default) when the service cannot list by update time:
        callers use `statuses()` instead."""
        return None

    async def wait(
        self,
        name: str,
        *,
        on_change: OnChange | None = None,
        timeout: float | None = None,
        known: JobStatus | None = None,
    ) -> JobResult:
        """Poll until the job ends, reporting every state change seen; the final result.

        `on_change` (sync or async) gets a `StateChange` for the first observation and for
        every change after it. `known` is a status the caller already has (`create`'s reply):
        it is that first observation, so its state (normally QUEUED) is reported too. `timeout`
        raises `WaitTimeoutError` and leaves the job running.
        """
        full = await self._full_name(name)
        status = await wait_until_terminal(
            lambda: self.get(full),
            on_change=on_change,
            interval=self.poll_schedule(),
            timeout=timeout,
            name=full,
            first=known,
        )
        self._record_end(status)
        return JobResult(status)

    async def run(
        self, job: Any, *, on_change: OnChange | None = None, timeout: float | None = None
    ) -> JobResult:
        """Create the job, wait for it to end (the create's reply is the first observation
        reported to `on_change`, normally QUEUED), then `finish` it."""
        status = await self.create(job)
        result = await self.wait(status.name, on_change=on_change, timeout=timeout, known=status)
        await self.finish(job, status.name)
        return result

    async def finish(self, job: Any, name: str, /) -> None:
        """What is left to do once `name` (a run of `job`) has ended; nothing, unless the
        service keeps a resource that only served this run."""
        await self._settle_history(name)

    # ----------------------------------------------------------------- the run history

    def _record_submission(
        self, status: JobStatus, request: Any, submission_id: str, job: Any
    ) -> None:
        """Put the run `create` just made in the local run history (gcpjobs.history): its
        names and a digest of `request` (a proto-plus message), never its contents. Written
        here, in the caller's thread: it takes milliseconds, and a create that handed its
        reply to a worker thread could be cancelled with the name of a job it made lost."""
        from gcpjobs import history

        wire = type(request).pb(request).SerializeToString(deterministic=True)
        step = history.step_pointer(list(getattr(job, "command", [])),
                                    list(getattr(job, "args", [])),
                                    dict(getattr(job, "env", {})))
        history.record_submission(
            target=history.target_key(self.target), status=status,
            submission_id=submission_id, spec_digest=history.request_digest(wire), step=step,
        )

    def _record_end(self, status: JobStatus) -> None:
        """Tell the run history how a run ended, if `status` is an end (nothing for a run it
        does not hold, or holds ended already). Called with every status a Get or a wait
        returns, so a run followed by any watcher has its end recorded at no extra call."""
        from gcpjobs import history

        history.record_status(target=history.target_key(self.target), status=status)

    async def _settle_history(self, name: str) -> None:
        """At `finish`: if the history holds `name` without its end (a watcher saw the end
        in a listing, not a Get), one Get records it before the resource may go."""
        from gcpjobs import history

        full = self.resource_name(name)
        if not history.awaits_end(target=history.target_key(self.target), name=full):
            return
        try:
            status = await self.get(full)
        except GcpJobsError as error:
            logger.info("run history: could not read how %s ended (%s)", full, error)
            return
        self._record_end(status)

    # --------------------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        """Close the connections (the client can be used again; it reconnects)."""
        await self._apis.close(lambda api: api.close())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


Client = TypeVar("Client", bound=AsyncJobClientBase[Any])


def _blocking(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """The facade's `name`: the async client's coroutine method, run to its end."""

    @functools.wraps(method)
    def call(self: SyncJobClientBase[Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._run(getattr(self._async, name)(*args, **kwargs))

    return call


def _collecting(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """The facade's `name` for an async generator method: every item, in a list."""

    @functools.wraps(method)
    def call(self: SyncJobClientBase[Any], /, *args: Any, **kwargs: Any) -> list[Any]:
        async def collect() -> list[Any]:
            return [item async for item in getattr(self._async, name)(*args, **kwargs)]

        return self._run(collect())

    call.__signature__ = _returning(method, "list")  # type: ignore[attr-defined]
    return call


def _returning(method: Callable[..., Any], container: str) -> inspect.Signature:
    """`method`'s signature with its `AsyncIterator[X]` return shown as `container[X]`."""
    signature = inspect.signature(method)
    shown = str(signature.return_annotation).replace("AsyncIterator", container, 1)
    return signature.replace(return_annotation=shown)


def _iterating(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """The facade's `iter_<name>`: like `name`, each next item fetched only when the caller
    gets there (a list's next page only then)."""

    @functools.wraps(method)
    def call(self: SyncJobClientBase[Any], /, *args: Any, **kwargs: Any) -> Iterator[Any]:
        items = getattr(self._async, name)(*args, **kwargs)

        async def next_item() -> Any:
            return await anext(items)

        while True:
            try:
                yield self._run(next_item())
            except StopAsyncIteration:
                return

    call.__name__ = call.__qualname__ = f"iter_{name}"
    call.__signature__ = _returning(method, "Iterator")  # type: ignore[attr-defined]
    call.__doc__ = f"Like `{name}`, fetching the next page only when the caller gets there."
    return call


class SyncJobClientBase(Generic[Client]):
    """An async client for scripts and notebooks: the same methods, blocking.

    The methods are made from the async client's (`async_client_type`) when a facade class is
    defined: each public coroutine method blocks until it is done, and each async generator
    method (`list`) gives a list, with an `iter_` twin (`iter_list`) that fetches as it goes;
    a method the facade class defines itself is kept. The async client runs on a private event
    loop in a daemon thread, so this works where a loop is already running (Jupyter).
    `on_change` callbacks run in that thread. Interrupting a call (Ctrl-C) stops waiting; it
    does not cancel the job.
    """

    # The async client class it wraps, and the name of its loop's thread.
    async_client_type: ClassVar[Callable[..., Any]]
    thread_name: ClassVar[str]

    # What the facade has of its own (or, for the context manager and `close`, does its way).
    _NOT_GENERATED = frozenset({"close", "resource_name"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        client_type = cls.__dict__.get("async_client_type")
        if client_type is None:
            return
        # help() and IDEs show the async client's options, which `__init__` passes on.
        cls.__signature__ = inspect.signature(client_type).replace(  # type: ignore[attr-defined]
            return_annotation=inspect.Signature.empty
        )
        for name, method in inspect.getmembers(client_type, inspect.isfunction):
            if name.startswith("_") or name in cls._NOT_GENERATED or name in cls.__dict__:
                continue
            if inspect.iscoroutinefunction(method):
                setattr(cls, name, _blocking(name, method))
            elif inspect.isasyncgenfunction(method):
                setattr(cls, name, _collecting(name, method))
                if f"iter_{name}" not in cls.__dict__:
                    setattr(cls, f"iter_{name}", _iterating(name, method))

    def __init__(self, **settings: Any) -> None:
        """`settings` are the async client's keyword options (see `AsyncJobClientBase`)."""
        self._async: Client = self.async_client_type(**settings)
        self._loop = BackgroundLoop(self.thread_name)

    @property
    def async_client(self) -> Client:
        return self._async

    @property
    def target(self) -> Target:
        return self._async.target

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coroutine, what=type(self).__name__)

    def resource_name(self, name: str, region: str | None = None) -> str:
        return self._async.resource_name(name, region)

    def close(self) -> None:
        if self._loop.closed:
            return
        try:
            self._run(self._async.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A forgotten close() must not leave a thread per client behind.
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.stop_soon()
