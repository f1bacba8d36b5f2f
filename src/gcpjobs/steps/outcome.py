"""Turning a finished step's job into what the caller gets: the return value, the remote
exception raised again here, or a `RemoteStepError` that says why there is neither.

The result is verified before anything in it is unpickled: one whose signature does not match
is refused.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from gcpjobs.errors import GcpJobsError, RemoteStepError
from gcpjobs.results import JobResult
from gcpjobs.states import JobState
from gcpjobs.steps.payload import Outcome, PayloadError, decode_outcome, first_line
from gcpjobs.steps.signing import SignatureError, unseal
from gcpjobs.steps.store import RESULT, STARTED, ArtifactStore, run_key


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the job, shown as the cause of the one raised
    here (as `concurrent.futures` does for a worker process's exceptions)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nthe traceback in the job:\n{self.text.rstrip()}"


def _no_outcome(what: str, result: JobResult, started: bool, store: ArtifactStore) -> RemoteStepError:
    status = result.status
    said = f": {first_line(status.error.message)}" if status.error else ""
    if started:
        # Timed out, preempted, out of memory, killed, cancelled: the process died mid-call.
        message = f"{what} ended without an outcome: job {status.name} ended {status.state}{said}"
    elif status.state is JobState.CANCELLED:
        message = f"{what} was cancelled before it started (job {status.name}){said}"
    else:
        message = (
            f"{what} did not start: job {status.name} ended {status.state}{said}; the image "
            "must be able to run `python -m gcpjobs.steps.entrypoint` (pip install gcpjobs in "
            f"it, gcpjobs[gcs] for a gs:// store), to read the artifact store {store.url}, "
            "and to read its key from Secret Manager (on Google Cloud the job's service "
            "account needs roles/secretmanager.secretAccessor; the job's log says which failed)"
        )
    return RemoteStepError(message, job_name=status.name, state=str(status.state))


@dataclass(frozen=True)
class Received:
    """What a step gave back: a value, or an exception to raise in the caller's frame (so
    that the caller's traceback is not buried under gcpjobs' own frames)."""

    value: Any = None
    error: BaseException | None = None
    cause: BaseException | None = None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error.with_traceback(None) from self.cause
        return self.value


def _remote_exception(what: str, job_name: str, outcome: Outcome) -> Received:
    cause = RemoteTraceback(outcome.traceback or "(no traceback)")
    error: Any = None
    if outcome.pickled:
        try:
            error = pickle.loads(outcome.pickled)
        except Exception:  # its class does not exist here, or cannot be rebuilt from its args
            error = None
    # SystemExit or KeyboardInterrupt from the job must not stop this process.
    if not isinstance(error, Exception):
        error = RemoteStepError(
            f"{what} raised {outcome.type_name}: {first_line(outcome.message)} (job "
            f"{job_name}; the exception could not be rebuilt here, its traceback follows)",
            job_name=job_name, type_name=outcome.type_name, remote_traceback=outcome.traceback,
        )
    return Received(error=error, cause=cause)


def read_outcome(
    store: ArtifactStore, run_id: str, key: bytes, result: JobResult, *, what: str
) -> Received:
    """The step's return value, or the exception to raise: its own (raised again here),
    or a RemoteStepError.

    `result` is the job's end (its state explains a missing outcome); `what` names the step in
    messages ("remote step mymod.train").
    """
    name = result.name
    try:
        envelope = store.read_if_exists(run_key(run_id, RESULT))
        started = envelope is not None or store.exists(run_key(run_id, STARTED))
    except Exception as error:
        raise GcpJobsError(f"cannot read the result of {what} (job {name}) from "
                           f"{store.url}: {error}") from error
    if envelope is None:
        return Received(error=_no_outcome(what, result, started, store))
    try:
        outcome = decode_outcome(unseal(key, "result", run_id, envelope))
    except (SignatureError, PayloadError) as error:
        return Received(error=RemoteStepError(
            f"the result of {what} (job {name}) was refused and not unpickled: {error}",
            job_name=name, state=str(result.state),
        ))
    if outcome.kind == "refused":
        return Received(error=RemoteStepError(
            f"job {name} refused to run {what}: {first_line(outcome.message)}; nothing ran",
            job_name=name, state=str(result.state),
        ))
    if outcome.kind == "raised":
        return _remote_exception(what, name, outcome)
    try:
        return Received(value=pickle.loads(outcome.pickled))
    except Exception as error:
        return Received(error=RemoteStepError(
            f"the return value of {what} (job {name}) cannot be unpickled here: "
            f"{type(error).__name__}: {first_line(str(error))}",
            job_name=name, state=str(result.state),
        ), cause=error)
