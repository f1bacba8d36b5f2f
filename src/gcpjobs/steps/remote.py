"""Run one Python function as a Vertex AI custom job or a Cloud Run job, as if it ran here.

    @gcpjobs.remote(machine_type="n1-standard-8", accelerator_type="NVIDIA_TESLA_T4")
    def train(data: np.ndarray, epochs: int) -> Model: ...

    model = train(data, epochs=3)                       # runs as a job, returns the value
    model = train.with_settings(scheduling_strategy="SPOT")(data, epochs=3)
    model = await train.run_async(data, epochs=3)       # from async code
    value = gcpjobs.run_remote(fn, x, settings={"kind": "cloud-run", "cpu": "4"})

One call: check the settings; pack the code archive and the payload (packaging.py); create the
job, whose one command is `python -m gcpjobs.steps.entrypoint RUN_URL`; wait for its end;
read and verify the outcome (outcome.py). Interrupting the caller cancels the job.

Synchronous calls run on a private event loop in a daemon thread, so they work where a loop is
already running (notebooks, Prefect tasks). This module imports nothing heavy at import time:
a job that imports the user's module (and so this decorator) must start fast.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from gcpjobs.errors import GcpJobsError, RemoteStepError, SpecError
from gcpjobs.kinds import bare_name_kind
from gcpjobs.steps.payload import RUN_ID_ENV, function_name

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient
    from gcpjobs.steps.jobs import StepRecord
    from gcpjobs.steps.keys import KeyVault
    from gcpjobs.steps.outcome import Received
    from gcpjobs.steps.settings import StepSettings

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger("gcpjobs.steps")

# How long an interrupted synchronous caller waits for the job's cancel to be sent.
CANCEL_WAIT_SECONDS = 30.0
# The kind of a step's job name that no kind's name rule claims: a bare name that is not a
# number is a Cloud Run execution id (the registry's `bare_name_kind`).
BARE_NAME_KIND = bare_name_kind()


# ------------------------------------------------------------------------ one call, async


async def _execute(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any],
    settings: StepSettings,
) -> Received:
    from gcpjobs.clients.kinds import client_for_kind
    from gcpjobs.specs.labels import new_submission_id
    from gcpjobs.steps.jobs import finish_quietly, submit, wait_or_cancel
    from gcpjobs.steps.keys import KeyVault
    from gcpjobs.steps.outcome import read_outcome
    from gcpjobs.steps.packaging import prepare_call
    from gcpjobs.steps.settings import (
        IMAGE_ENV,
        PLACEHOLDER_KEY_SECRET,
        STORE_ENV,
        config_path,
        default_store,
        load_config,
    )
    from gcpjobs.steps.signing import new_key
    from gcpjobs.steps.store import open_store

    config = load_config()
    image = settings.image or config.image
    if image is None:
        raise SpecError(f"no image is configured for remote steps; pass image=..., set "
                        f"{IMAGE_ENV}, or add steps.image to {config_path()}", field="image")
    store = open_store(settings.store or config.store or default_store())
    run_id = new_submission_id()
    key = new_key()
    name = function_name(function)

    def job_spec(key_secret: str, emulator_host: str | None = None) -> Any:
        return settings.job_spec(function_name=name, image=image, run_url=store.run_url(run_id),
                                 key_secret=key_secret, emulator_host=emulator_host)

    # Checked before anything is made; the key's secret is named once the project is known.
    planned = job_spec(PLACEHOLDER_KEY_SECRET)
    client = client_for_kind(settings.kind, project=planned.project, region=planned.region)
    async with client:
        # Resolving the target may boot the embedded emulator: meanwhile, pack the call.
        target, prepared = await asyncio.gather(
            asyncio.to_thread(lambda: client.target),
            asyncio.to_thread(prepare_call, function, args, kwargs, code_dir=settings.code_dir,
                              store=store, run_id=run_id, key=key),
        )
        if store.is_local and not target.is_emulator:
            raise SpecError(f"{store.url} is a local directory, which a job on Google Cloud "
                            "cannot read; set store='gs://BUCKET/PREFIX' (pip install "
                            f"'gcpjobs[gcs]') or {STORE_ENV}", field="store")
        vault = KeyVault(target, credentials=getattr(client, "credentials", None))
        try:
            secret = await asyncio.to_thread(
                vault.store, run_id, key,
                service_account=getattr(planned, "service_account", None))
            spec = job_spec(secret.version, target.grpc_address if target.is_emulator else None)
            try:
                status = await submit(client, spec, run_id)
            except BaseException:
                # No job holds the key (or one whose create's reply was lost, which then
                # fails to read it and writes no outcome): nothing is left to verify.
                await asyncio.shield(asyncio.to_thread(vault.delete, secret))
                raise
            # From here the secret is kept until it expires (keys.SECRET_TTL_SECONDS): it is
            # what lets `fetch_result` verify this outcome later, from any machine.
            logger.info("remote step %s: job %s created (%s); if this process stops "
                        "waiting, `gcpjobs step result %s` fetches its outcome", name,
                        status.name, prepared.describe(), status.job_id)
            result = await wait_or_cancel(client, status)
            try:
                return await asyncio.to_thread(read_outcome, store, run_id, key, result,
                                               what=f"remote step {name}")
            finally:
                await finish_quietly(client, spec, status.name)
        finally:
            await asyncio.to_thread(vault.close)


# --------------------------------------------------------------------- synchronous callers


class _BlockingRunner:
    """Runs steps for synchronous callers on one private event loop in a daemon thread.

    An interrupted caller (Ctrl-C, or any BaseException raised into the waiting thread)
    cancels the step and waits, up to CANCEL_WAIT_SECONDS, for the job's cancel to be sent
    before the interruption goes on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # After a fork the loop's thread is gone: the child needs its own.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="gcpjobs-steps",
                                 daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        finished = threading.Event()

        async def guarded() -> T:
            try:
                return await coroutine
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(guarded(), self._running_loop())
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
                finished.wait(CANCEL_WAIT_SECONDS)
            raise


_runner = _BlockingRunner()


# ------------------------------------------------------------------------------ the API


def _parse(settings: Mapping[str, Any] | None) -> StepSettings:
    from gcpjobs.steps.settings import StepSettings

    return StepSettings.parse(settings or {})


class RemoteFunction(Generic[P, R]):
    """A function that runs as a job when called. Made by `remote`; see the module doc.

    Calling it blocks until the job has ended and returns the function's value (for an
    `async def` function it returns an awaitable). `run_async` is the awaitable form for a
    plain function; `local` runs it here; `with_settings` gives a copy with overrides.
    """

    def __init__(self, function: Callable[P, R], settings: Mapping[str, Any]) -> None:
        if not callable(function):
            raise SpecError(f"remote() takes the function to run, not {type(function).__name__}; "
                            "settings go as keywords: @remote(machine_type=...)")
        functools.update_wrapper(self, function)
        self._function = function
        self._given = dict(settings)
        self._settings: StepSettings | None = None
        # Checked now, so that a typo fails at import; not inside a step's own job, where
        # importing the user's module must stay cheap (the call was checked by the caller).
        if not os.environ.get(RUN_ID_ENV):
            self._settings = _parse(self._given)

    @property
    def settings(self) -> StepSettings:
        if self._settings is None:
            self._settings = _parse(self._given)
        return self._settings

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if inspect.iscoroutinefunction(self._function):
            # Awaited by the caller, as the function itself would be.
            return self.run_async(*args, **kwargs)  # type: ignore[return-value]
        result: R = _runner.run(_execute(self._function, args, kwargs, self.settings)).unwrap()
        return result

    async def run_async(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run as a job, awaitably; the function's value (awaited, for an async function)."""
        return (await _execute(self._function, args, kwargs, self.settings)).unwrap()

    def with_settings(self, **overrides: Any) -> RemoteFunction[P, R]:
        """A copy whose settings are these, over this one's (checked now)."""
        return RemoteFunction(self._function, self.settings.merged(overrides).given)

    def local(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here, in this process."""
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<remote function {function_name(self._function)} ({self.settings.kind})>"


@overload
def remote(function: Callable[P, R], /, **settings: Any) -> RemoteFunction[P, R]: ...
@overload
def remote(function: None = None, /, **settings: Any) -> Callable[[Callable[P, R]], RemoteFunction[P, R]]: ...
def remote(function: Callable[P, R] | None = None, /, **settings: Any) -> Any:
    """Make `function` run as a job when called: `@remote`, `@remote(**settings)`, or
    `remote(function, **settings)` (which leaves `function` itself as it was).

    Settings are the job spec's fields (`VertexJob`'s, or `CloudRunJob`'s with
    `kind="cloud-run"`) plus `store`, `code_dir` and `python` (see steps/settings.py). They
    are checked here: a wrong one raises a one-line SpecError at once.
    """
    if function is not None:
        return RemoteFunction(function, settings)

    def decorate(inner: Callable[P, R]) -> RemoteFunction[P, R]:
        return RemoteFunction(inner, settings)

    return decorate


def _unwrapped(function: Any, settings: Mapping[str, Any] | None) -> tuple[Callable[..., Any], StepSettings]:
    if isinstance(function, RemoteFunction):
        return function._function, function.settings.merged(settings)
    if not callable(function):
        raise SpecError(f"run_remote() takes the function to run first, not "
                        f"{type(function).__name__}")
    return function, _parse(settings)


def run_remote(
    function: Callable[..., R], /, *args: Any, settings: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> R:
    """`function(*args, **kwargs)` run as a job; blocks until it ends. `settings` as for
    `remote` (over a remote function's own)."""
    target, checked = _unwrapped(function, settings)
    result: R = _runner.run(_execute(target, args, kwargs, checked)).unwrap()
    return result


async def run_remote_async(
    function: Callable[..., Any], /, *args: Any, settings: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """`run_remote`, awaitably."""
    target, checked = _unwrapped(function, settings)
    return (await _execute(target, args, kwargs, checked)).unwrap()


# ------------------------------------------------------------------------ results later


def _registered_kind(kind: Any) -> str:
    """`kind` as the kind registry names it; SpecError (one line, listing the known kinds)
    for a kind no entry serves."""
    from gcpjobs.kinds import UnknownKindError, kind_entry, known_kinds

    try:
        return kind_entry(kind).name
    except UnknownKindError:
        quoted = [repr(name) for name in known_kinds()]
        one_of = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
        raise SpecError(f"must be {one_of}, got {kind!r}", field="kind") from None


async def _fetch(
    job_name: str,
    *,
    kind: str | None = None,
    project: str | None = None,
    region: str = "us-central1",
    wait: bool = True,
    timeout: float | None = None,
) -> Received:
    from gcpjobs.clients.kinds import client_for_kind, kind_of_name
    from gcpjobs.steps.jobs import step_record
    from gcpjobs.steps.keys import KeyVault
    if kind is not None:
        kind = _registered_kind(kind)
    if not isinstance(job_name, str) or not job_name.strip():
        raise SpecError("give the step's job name: a Vertex job id or a Cloud Run execution id",
                        field="job_name")
    # A name no kind's rule claims (one that is not a number) is a Cloud Run execution id.
    chosen = kind or kind_of_name(job_name) or BARE_NAME_KIND
    client = client_for_kind(chosen, project=project, region=region)
    async with client:
        full, record = await step_record(client, job_name)
        vault = KeyVault(client.target, credentials=getattr(client, "credentials", None))
        try:
            return await _fetch_verified(client, full, record, vault, wait=wait,
                                         timeout=timeout)
        finally:
            await asyncio.to_thread(vault.close)


async def _fetch_verified(
    client: JobClient, full: str, record: StepRecord, vault: KeyVault, *, wait: bool,
    timeout: float | None,
) -> Received:
    from gcpjobs.results import JobResult
    from gcpjobs.steps.outcome import read_outcome
    from gcpjobs.steps.store import check_store_url, open_store, split_run_url

    try:
        store_url, run_id = split_run_url(record.run_url)
    except ValueError as error:
        raise GcpJobsError(f"job {full} is not a gcpjobs remote step ({error})") from None
    store = open_store(check_store_url(store_url, field=f"the store of job {full}"))
    if wait:
        result = await client.wait(full, timeout=timeout)
    else:
        status = await client.get(full)
        if not status.is_terminal:
            raise RemoteStepError(
                f"job {full} is still {status.state}; its outcome is not there yet: wait "
                "for it (wait=True, or `gcpjobs step result` without --no-wait)",
                job_name=full, state=str(status.state),
            )
        result = JobResult(status)
    key = await asyncio.to_thread(vault.read, record.key_secret)
    return await asyncio.to_thread(read_outcome, store, run_id, key, result,
                                   what=f"the remote step of job {full}")


async def fetch_result_async(
    job_name: str,
    *,
    kind: str | None = None,
    project: str | None = None,
    region: str = "us-central1",
    wait: bool = True,
    timeout: float | None = None,
) -> Any:
    """The outcome of the remote step that ran as `job_name` (a Vertex job id or name, a
    Cloud Run execution id or name): its value, or its exception raised again.

    With `wait`, a step still running is waited for (`timeout` seconds at most); without, it
    is a RemoteStepError. Waiting here never cancels the job.
    """
    received = await _fetch(job_name, kind=kind, project=project, region=region, wait=wait,
                            timeout=timeout)
    return received.unwrap()


def fetch_result(
    job_name: str,
    *,
    kind: str | None = None,
    project: str | None = None,
    region: str = "us-central1",
    wait: bool = True,
    timeout: float | None = None,
) -> Any:
    """`fetch_result_async`, blocking."""
    received = _runner.run(_fetch(job_name, kind=kind, project=project, region=region,
                                  wait=wait, timeout=timeout))
    return received.unwrap()
