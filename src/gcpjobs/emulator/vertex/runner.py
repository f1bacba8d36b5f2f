"""Moves each CustomJob through the Vertex state machine and runs its replicas.

QUEUED → (queued_seconds) → PENDING → (pending_seconds; replicas start) → RUNNING →
SUCCEEDED | FAILED; a cancel at any non-terminal point ends in CANCELLED. A timing of `None`
holds the job in that state until `advance()`. One thread per job: simple, and each thread
mostly sleeps on its condition. The service talks to a runner only through `JobRunner`, so a
process-free runner (issue 6: thousands of held jobs) can replace this one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1 import JobState as State

from gcpjobs.emulator.config import Timings as Timings  # re-exported (older imports)
from gcpjobs.emulator.errors import internal_message
from gcpjobs.emulator.executor import (
    JobEnvironment,
    LaunchError,
    ReplicaLaunch,
    job_dir,
    signal_text,
    write_service_log,
)
from gcpjobs.emulator.threads import AdvanceError, RunThreads, hold
from gcpjobs.emulator.vertex.execution import JobExecution, Outcome
from gcpjobs.emulator.vertex.replicas import plan_replicas

_log = logging.getLogger(__name__)


# google.rpc.Code numbers used in CustomJob.error
CODE_CANCELLED = 1
CODE_INVALID_ARGUMENT = 3  # what Vertex reports for a replica's own failure
CODE_DEADLINE_EXCEEDED = 4
CODE_INTERNAL = 13
CODE_UNAVAILABLE = 14  # the emulator's choice for a preempted job whose retries are spent

# "Vertex AI retries the whole job up to 3 times" (Understand the Vertex AI serverless
# training service: restarts after non-permanent errors); the emulator uses the same bound for
# preemptions and for restarts under `restart_job_on_worker_restart`.
MAX_JOB_RETRIES = 3

CANCELLED_MESSAGE = "CANCELED"  # the real service's spelling
STOPPED_MESSAGE = (
    "The gcpjobs emulator stopped while this job was running; its replicas were stopped and "
    "the job cannot be resumed."
)


def preempted_message(retries: int) -> str:
    spent = f" after {retries} retries" if retries else ""
    return (
        f"The job's Spot VMs were preempted (capacity reclaimed by Compute Engine){spent}, and "
        "the job was not retried again (scheduling.disable_retries, or the retries are spent)."
    )


class JobFaultError(Exception):
    """A job fault (crash, preemption) cannot be applied to this job now."""


@dataclass(frozen=True)
class JobError:
    code: int
    message: str


class StateSink(Protocol):
    """Where a runner reports what happened to a job (the service)."""

    def transition(
        self,
        name: str,
        state: State,
        *,
        error: JobError | None = None,
        web_access_uris: Mapping[str, str] | None = None,
    ) -> None: ...


class JobRunner(Protocol):
    def submit(self, job: aiplatform_v1.CustomJob) -> None: ...
    def cancel(self, name: str) -> None: ...
    def advance(self, name: str, timeout: float = 10.0) -> str: ...
    def timings_changed(self) -> None: ...
    def stop_all(self, timeout: float = 30.0, *, final: bool = True) -> None: ...
    def crash(self, name: str, replica: str | None = None) -> str: ...
    def preempt(self, name: str) -> None: ...


def exit_message(replica: str, returncode: int) -> str:
    if returncode < 0:
        return f"The replica {replica} was terminated by {signal_text(-returncode)}. Termination reason: Error."
    return (
        f"The replica {replica} exited with a non-zero status of {returncode}. "
        "Termination reason: Error."
    )


def _seconds_text(duration: timedelta) -> str:
    return f"{duration.total_seconds():g}s"


@dataclass
class _Control:
    """What other threads ask of one job thread; guarded by `cond`."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    phase: State = State.JOB_STATE_QUEUED
    cancel: bool = False
    stop: bool = False
    advances: int = 0
    done: bool = False
    spot: bool = False  # scheduling.strategy SPOT: the job may be preempted
    execution: JobExecution | None = None  # the replicas now running (RUNNING only)
    crashed: set[str] = field(default_factory=set)  # replicas killed by /_emulator/crash
    preempted: bool = False  # /_emulator/preempt asked for, not yet handled


class ProcessRunner:
    """Runs every replica as a local process tree (see executor.py)."""

    def __init__(
        self,
        *,
        data_dir: Path,
        sink: StateSink,
        timings: Callable[[], Timings],
        web_access_uri: Callable[[str, str], str],
        environment: JobEnvironment | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._environment = environment or JobEnvironment(data_dir)
        self._sink = sink
        self._timings = timings
        self._web_access_uri = web_access_uri
        self._threads: RunThreads[_Control] = RunThreads()

    # ------------------------------------------------------------------ requests from the service

    def submit(self, job: aiplatform_v1.CustomJob) -> None:
        control = _Control()
        self._threads.start(job.name, control, lambda: self._run(job, control),
                            f"job-{job.name.rsplit('/', 1)[-1]}")

    def cancel(self, name: str) -> None:
        control = self._control(name)
        if control is None:
            return
        with control.cond:
            control.cancel = True
            control.cond.notify_all()

    def advance(self, name: str, timeout: float = 10.0) -> str:
        """Move a job held in QUEUED or PENDING one state on; returns the state it reached."""
        control = self._control(name)
        if control is None:
            raise AdvanceError("the job is not queued or pending")
        with control.cond:
            if control.phase not in (State.JOB_STATE_QUEUED, State.JOB_STATE_PENDING) or control.cancel:
                raise AdvanceError(f"the job is {control.phase.name}, not queued or pending")
            before = control.phase
            control.advances += 1
            control.cond.notify_all()
            if not control.cond.wait_for(lambda: control.phase != before or control.done, timeout):
                raise AdvanceError(f"the job did not leave {before.name} within {timeout:g}s")
            return str(control.phase.name)

    def timings_changed(self) -> None:
        for control in self._threads.controls():
            with control.cond:
                control.cond.notify_all()

    def crash(self, name: str, replica: str | None = None) -> str:
        """SIGKILL one running replica's process tree (default: the primary), as a machine
        that died would; returns the replica's name. The job then fails with that replica's
        error, or restarts (see `_lifecycle`)."""
        control = self._control(name)
        if control is None:
            raise JobFaultError("the job is not running")
        with control.cond:
            execution = control.execution
            if control.phase != State.JOB_STATE_RUNNING or execution is None or control.cancel:
                raise JobFaultError(f"the job is {control.phase.name}, not RUNNING")
            names = execution.replica_names()
            replica = replica or names[0]
            if replica not in names:
                raise JobFaultError(f"the job has no replica {replica!r}; it has {', '.join(names)}")
            control.crashed.add(replica)
        if not execution.crash(replica):
            with control.cond:
                control.crashed.discard(replica)
            raise JobFaultError(f"the replica {replica} has already exited")
        return replica

    def preempt(self, name: str) -> None:
        """Reclaim a running SPOT job's VMs: its replicas are stopped (SIGTERM, the cancel grace
        period, SIGKILL), then the job is retried or fails (see `_lifecycle`)."""
        control = self._control(name)
        if control is None:
            raise JobFaultError("the job is not running")
        with control.cond:
            if control.phase != State.JOB_STATE_RUNNING or control.execution is None or control.cancel:
                raise JobFaultError(f"the job is {control.phase.name}, not RUNNING")
            if not control.spot:
                raise JobFaultError("only jobs on Spot VMs (job_spec.scheduling.strategy SPOT) "
                                    "are preempted")
            control.preempted = True
            control.cond.notify_all()

    def stop_all(self, timeout: float = 30.0, *, final: bool = True) -> None:
        """Stop every job (shutdown, reset): kill its trees, record it FAILED.

        `final=False` (a reset) accepts new jobs again afterwards.
        """
        self._threads.stop_all(timeout, final=final)

    def active(self) -> int:
        return len(self._threads)

    def _control(self, name: str) -> _Control | None:
        return self._threads.control(name)

    # ------------------------------------------------------------------------------ job thread

    def _run(self, job: aiplatform_v1.CustomJob, control: _Control) -> None:
        try:
            self._lifecycle(job, control)
        except Exception as error:  # a bug here must not leave the job RUNNING forever
            _log.exception("job %s failed inside the emulator", job.name)
            self._finish(job.name, control, State.JOB_STATE_FAILED,
                         JobError(CODE_INTERNAL, internal_message(error)))
        finally:
            with control.cond:
                control.done = True
                control.cond.notify_all()

    def _lifecycle(self, job: aiplatform_v1.CustomJob, control: _Control) -> None:
        name = job.name
        if not self._hold(control, lambda t: t.queued_seconds):
            return self._interrupted(name, control)
        self._move(name, control, State.JOB_STATE_PENDING)
        if not self._hold(control, lambda t: t.pending_seconds):
            return self._interrupted(name, control)

        job_id = name.rsplit("/", 1)[-1]
        try:
            plan = plan_replicas(job, data_dir=self._data_dir, environment=self._environment)
        except LaunchError as error:
            write_service_log(self._data_dir, job_id, [error.message])
            return self._finish(name, control, State.JOB_STATE_FAILED,
                                JobError(CODE_INVALID_ARGUMENT, error.message))
        write_service_log(self._data_dir, job_id, plan.notes)
        scheduling = job.job_spec.scheduling
        timeout = scheduling.timeout
        deadline = time.monotonic() + timeout.total_seconds() if timeout else None
        with control.cond:
            control.spot = scheduling.strategy == aiplatform_v1.Scheduling.Strategy.SPOT
        retries = 0
        while True:
            execution = JobExecution(job_dir(self._data_dir, job_id), plan.launches, control.cond)
            try:
                execution.start()
            except LaunchError as error:
                write_service_log(self._data_dir, job_id, [error.message])
                return self._finish(name, control, State.JOB_STATE_FAILED,
                                    JobError(CODE_INVALID_ARGUMENT, error.message))
            with control.cond:
                control.execution = execution
            try:
                outcome = self._watch(job, control, execution, plan.launches, deadline,
                                      first=retries == 0)
            finally:  # whatever happened, no process of this job outlives it
                with control.cond:
                    control.execution = None
                execution.stop(grace=self._timings().cancel_grace_seconds)
            with control.cond:
                preempted = control.preempted and outcome is None
                control.preempted = False
                crashed = set(control.crashed)
                control.crashed.clear()
            if outcome is None and (control.cancel or control.stop):
                return self._interrupted(name, control)  # a cancel wins over a preemption
            lost = outcome.failed.replica if outcome and outcome.failed \
                and outcome.failed.replica in crashed else None
            why = None
            if preempted:
                why = "its Spot VMs were preempted"
            elif lost and scheduling.restart_job_on_worker_restart:
                why = (f"the replica {lost} was lost and "
                       "scheduling.restart_job_on_worker_restart is set")
            if why and not scheduling.disable_retries and retries < MAX_JOB_RETRIES:
                retries += 1
                write_service_log(self._data_dir, job_id, [
                    f"The job is restarted (retry {retries} of {MAX_JOB_RETRIES}): {why}; every "
                    "replica starts again in its working directory."
                ])
                continue
            if preempted:
                return self._finish(name, control, State.JOB_STATE_FAILED,
                                    JobError(CODE_UNAVAILABLE, preempted_message(retries)))
            break

        if outcome is None and not (control.cancel or control.stop):
            return self._finish(name, control, State.JOB_STATE_FAILED, JobError(
                CODE_DEADLINE_EXCEEDED,
                f"The CustomJob exceeded its maximum run time of {_seconds_text(timeout)} "
                "(job_spec.scheduling.timeout) and was stopped.",
            ))
        if outcome is None:
            return self._interrupted(name, control)
        if outcome.succeeded:
            return self._finish(name, control, State.JOB_STATE_SUCCEEDED)
        assert outcome.failed is not None
        return self._finish(name, control, State.JOB_STATE_FAILED, JobError(
            CODE_INVALID_ARGUMENT, exit_message(outcome.failed.replica, outcome.failed.returncode)
        ))

    def _watch(
        self,
        job: aiplatform_v1.CustomJob,
        control: _Control,
        execution: JobExecution,
        launches: Sequence[ReplicaLaunch],
        deadline: float | None,
        *,
        first: bool = True,
    ) -> Outcome | None:
        """RUNNING until the replicas decide the result (an Outcome), or until a cancel, a
        shutdown, a preemption or the timeout (None). `first`: this is the job's first run of
        its replicas (a restart does not enter RUNNING again)."""
        if first:
            web_access: dict[str, str] = {}
            if job.job_spec.enable_web_access:
                web_access = {launch.name: self._web_access_uri(job.name, launch.name)
                              for launch in launches}
            self._move(job.name, control, State.JOB_STATE_RUNNING, web_access_uris=web_access)
        with control.cond:
            while not (control.cancel or control.stop or control.preempted):
                outcome = execution.outcome()
                if outcome is not None:
                    return outcome
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                control.cond.wait(remaining)
        return None

    def _hold(self, control: _Control, seconds_of: Callable[[Timings], float | None]) -> bool:
        """Stay in the current phase for its configured time or until advanced (threads.hold)."""
        return hold(control, lambda: seconds_of(self._timings()))

    def _interrupted(self, name: str, control: _Control) -> None:
        if control.cancel:
            self._finish(name, control, State.JOB_STATE_CANCELLED,
                         JobError(CODE_CANCELLED, CANCELLED_MESSAGE))
        else:
            self._finish(name, control, State.JOB_STATE_FAILED, JobError(CODE_INTERNAL, STOPPED_MESSAGE))

    def _move(
        self,
        name: str,
        control: _Control,
        state: State,
        web_access_uris: Mapping[str, str] | None = None,
    ) -> None:
        self._sink.transition(name, state, web_access_uris=web_access_uris)
        with control.cond:
            control.phase = state
            control.cond.notify_all()

    def _finish(self, name: str, control: _Control, state: State, error: JobError | None = None) -> None:
        self._sink.transition(name, state, error=error)
        with control.cond:
            control.phase = state
            control.cond.notify_all()
