"""Runs a Cloud Run execution's tasks as local process trees, as Cloud Run schedules them.

`task_count` tasks, at most `parallelism` running at once; each task attempt runs the first
container's `command + args` (see executor.py: own session, JSONL output, kill tree), from the
emulator's small job environment (executor.JobEnvironment), with the variables Cloud Run sets
(reference §4.6): CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX,
CLOUD_RUN_TASK_ATTEMPT (0 first, +1 per retry), CLOUD_RUN_TASK_COUNT, plus the container's `env`
(secret references resolved from the local secret store, secrets.py).

A failed attempt (non-zero exit, killed, could not start, unknown secret, or past the task
timeout, which is per attempt and kills the tree) is retried up to `max_retries` times, at
once, in the same slot; a task that fails its last attempt is failed, and the execution fails
once every task has run ("If any task fails, the job execution is marked as failed after Cloud
Run tries all tasks"). A cancel or a shutdown stops every running tree (SIGTERM, the grace
period, SIGKILL); tasks not finished then count as cancelled.

Files, under `DATA_DIR/executions/PROJECT/LOCATION/EXECUTION/`:
`logs/task-INDEX-attempt-N.jsonl` (each attempt's stdout/stderr, after the emulator's own first
lines), `logs/service.jsonl` (the emulator's notes), `tasks/task-INDEX/` (working directories).

Each report carries the `TaskState`s that changed since the last one (the Tasks service's
records); a task that never started is not reported (the service knows it is pending, or
cancelled once the execution has ended).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from google.cloud import run_v2

from gcpjobs.emulator import clock
from gcpjobs.emulator.cloudrun.secrets import SecretError, SecretStore
from gcpjobs.emulator.config import Timings
from gcpjobs.emulator.errors import internal_message
from gcpjobs.emulator.executor import (
    SERVICE_LOG,
    JobEnvironment,
    LaunchError,
    ReplicaLaunch,
    ReplicaProcess,
    command_line,
    forget_pids,
    record_pids,
    signal_text,
    stop_all,
    write_notes,
)
from gcpjobs.emulator.names import path_under
from gcpjobs.emulator.threads import AdvanceError, RunThreads, hold

_log = logging.getLogger(__name__)

TIMEOUT_REASON = "The configured timeout was reached."
STOPPED_MESSAGE = (
    "The gcpjobs emulator stopped while this execution was running; its tasks were stopped and "
    "the execution cannot be resumed."
)
IMAGES_NOTE = (
    "The gcpjobs emulator runs each task's command and args as a local process on this host; "
    "container images are recorded, not pulled."
)


def execution_dir(data_dir: Path, name: str) -> Path:
    """`projects/P/locations/L/jobs/J/executions/E` → `DATA_DIR/executions/P/L/E`; ValueError
    for a name whose ids could lead outside it (names.path_under: the service checks names
    first, this is the defence in depth)."""
    parts = name.split("/")
    return path_under(data_dir / "executions", parts[1], parts[3], parts[7])


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"The container was terminated by {signal_text(-returncode)}."
    return f"The container exited with an exit code of {returncode}."


@dataclass(frozen=True)
class TaskCounts:
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0


class Ending(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a task failed its last attempt
    CANCELLED = "cancelled"
    STOPPED = "stopped"  # the emulator stopped (shutdown or reset)


@dataclass(frozen=True)
class Result:
    ending: Ending
    message: str = ""
    timed_out: bool = False  # the failing task's last attempt ran past the task timeout


class TaskStatus(enum.Enum):
    PENDING = "pending"  # not started yet, or waiting for its next attempt
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # its last attempt failed
    CANCELLED = "cancelled"  # stopped by a cancel or a shutdown


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt ended: `exit_code` or `term_signal` (at most one, as in Cloud Run's
    TaskAttemptResult), and why it failed ("" when it succeeded)."""

    exit_code: int | None = None
    term_signal: int | None = None
    message: str = ""
    timed_out: bool = False

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.message


@dataclass(frozen=True)
class TaskState:
    """One task of an execution as the runner last saw it."""

    index: int
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0  # the attempt running or last run (0 the first): the task's retry count
    start_time: datetime | None = None  # when its first attempt started
    completion_time: datetime | None = None  # when it ended for good
    last_result: AttemptResult | None = None  # of the last attempt that ended


class ExecutionSink(Protocol):
    """Where the runner reports an execution's progress (the service)."""

    def execution_progress(
        self, name: str, counts: TaskCounts, *, started: bool, result: Result | None = None,
        tasks: Sequence[TaskState] = (),
    ) -> None: ...


@dataclass
class _Control:
    """What other threads ask of one execution's thread; guarded by `cond`."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    cancel: bool = False
    stop: bool = False
    advances: int = 0
    held: bool = False  # waiting to start its tasks (Timings.queued_seconds)
    running: dict[int, _Attempt] | None = None  # the attempts now running, by task index


class TaskCrashError(Exception):
    """No running attempt of that task to crash."""


@dataclass
class _Attempt:
    index: int
    number: int
    process: ReplicaProcess
    deadline: float
    timed_out: bool = False


class TaskLauncher:
    """What one attempt of one task of an execution runs, and with which environment."""

    def __init__(
        self,
        execution: run_v2.Execution,
        directory: Path,
        secrets: SecretStore,
        environment: JobEnvironment,
    ) -> None:
        self.execution = execution
        self.directory = directory
        self._secrets = secrets
        self._environment = environment
        self._execution_id = execution.name.rsplit("/", 1)[-1]

    def logs(self) -> Path:
        return self.directory / "logs"

    def launch(self, index: int, attempt: int) -> tuple[ReplicaLaunch, list[str]]:
        """The launch and the notes for the attempt's first log lines; LaunchError if it cannot
        be started (nothing to run, an unknown secret)."""
        replica = f"task-{index}-attempt-{attempt}"
        container = self.execution.template.containers[0]
        argv, note = command_line(
            replica, container.command, container.args, container.image,
            "template.template.containers[0].command",
        )
        workdir = self.directory / "tasks" / f"task-{index}"
        env = self._environment.for_process(workdir)
        env.update(
            CLOUD_RUN_JOB=self.execution.job,
            CLOUD_RUN_EXECUTION=self._execution_id,
            CLOUD_RUN_TASK_INDEX=str(index),
            CLOUD_RUN_TASK_ATTEMPT=str(attempt),
            CLOUD_RUN_TASK_COUNT=str(self.execution.task_count),
        )
        for variable in container.env:
            if "value_source" in variable:
                ref = variable.value_source.secret_key_ref
                try:
                    env[variable.name] = self._secrets.resolve(ref.secret, ref.version)
                except SecretError as error:
                    raise LaunchError(replica, f"Environment variable {variable.name}: {error}") from None
            else:
                env[variable.name] = variable.value
        launch = ReplicaLaunch(
            name=replica,
            argv=argv,
            env=env,
            workdir=workdir,
            log_path=self.logs() / f"{replica}.jsonl",
        )
        return launch, [IMAGES_NOTE, note]


class ExecutionRunner:
    """One thread per running execution; the service talks to it by execution name."""

    def __init__(self, *, sink: ExecutionSink, timings: Callable[[], Timings]) -> None:
        self._sink = sink
        self._timings = timings
        self._threads: RunThreads[_Control] = RunThreads()

    def submit(self, launcher: TaskLauncher) -> None:
        """Start running an execution; RuntimeError while the emulator is stopping."""
        name = launcher.execution.name
        control = _Control()
        self._threads.start(name, control, lambda: self._run(launcher, control),
                            f"execution-{name.rsplit('/', 1)[-1]}")

    def cancel(self, name: str) -> None:
        control = self._threads.control(name)
        if control is not None:
            with control.cond:
                control.cancel = True
                control.cond.notify_all()

    def advance(self, name: str, timeout: float = 10.0) -> None:
        """Start the tasks of an execution held before its start."""
        control = self._threads.control(name)
        if control is None:
            raise AdvanceError("the execution is not waiting to start")
        with control.cond:
            if not control.held or control.cancel:
                raise AdvanceError("the execution is not waiting to start")
            control.advances += 1
            control.cond.notify_all()
            if not control.cond.wait_for(lambda: not control.held, timeout):
                raise AdvanceError(f"the execution did not start within {timeout:g}s")

    def crash(self, name: str, task: int | None = None) -> int:
        """SIGKILL the running attempt of `task` (default: the lowest running index), as a
        machine that died would: the attempt fails and is retried as any failed attempt is
        (`max_retries`). Returns the task's index."""
        control = self._threads.control(name)
        if control is None:
            raise TaskCrashError("the execution is not running")
        with control.cond:
            running = dict(control.running or {})
        candidates = sorted(i for i, a in running.items() if a.process.exit is None)
        if task is None and candidates:
            task = candidates[0]
        if task is None or task not in candidates:
            raise TaskCrashError("no task of the execution is running" if task is None
                                 else f"task {task} is not running")
        if not running[task].process.crash():
            raise TaskCrashError(f"task {task} has already exited")
        return task

    def timings_changed(self) -> None:
        for control in self._threads.controls():
            with control.cond:
                control.cond.notify_all()

    def stop_all(self, timeout: float = 30.0, *, final: bool = True) -> None:
        """Stop every execution (shutdown, reset); `final=False` accepts new ones afterwards."""
        self._threads.stop_all(timeout, final=final)

    def _run(self, launcher: TaskLauncher, control: _Control) -> None:
        try:
            _Schedule(launcher, control, self._sink, self._timings).run()
        except Exception as error:  # a bug here must not leave the execution running for ever
            _log.exception("execution %s failed inside the emulator", launcher.execution.name)
            self._sink.execution_progress(
                launcher.execution.name, TaskCounts(), started=True,
                result=Result(Ending.FAILED, internal_message(error)),
            )


class _Schedule:
    """The state of one execution's run: which tasks wait, run, and how each ended."""

    def __init__(
        self, launcher: TaskLauncher, control: _Control, sink: ExecutionSink, timings: Callable[[], Timings]
    ) -> None:
        execution = launcher.execution
        self.launcher = launcher
        self.control = control
        self.sink = sink
        self.timings = timings
        self.name = execution.name
        self.task_count = execution.task_count
        self.parallelism = execution.parallelism or execution.task_count
        self.max_retries = execution.template.max_retries
        self.timeout = execution.template.timeout.total_seconds()
        self.pending: deque[tuple[int, int]] = deque((index, 0) for index in range(self.task_count))
        self.running: dict[int, _Attempt] = {}
        control.running = self.running  # read under control.cond by `ExecutionRunner.crash`
        self.counts = TaskCounts()
        self.started = False
        self.first_failure: Result | None = None
        self.tasks: dict[int, TaskState] = {}  # the tasks that have started, by index
        self.changed: dict[int, TaskState] = {}  # since the last report

    def run(self) -> None:
        write_notes(self.launcher.logs() / f"{SERVICE_LOG}.jsonl", [
            IMAGES_NOTE,
            f"{self.task_count} task(s), at most {self.parallelism} at once, "
            f"{self.max_retries} retries each, {self.timeout:g}s per attempt.",
        ])
        self._report()
        if not self._wait_to_start():
            return self._stop()
        try:
            while self.pending or self.running:
                if self._interrupted():
                    return self._stop()
                self._start_tasks()
                self._wait()
                self._collect()
        finally:
            forget_pids(self.launcher.directory)
        if self.first_failure is not None:
            self._report(self.first_failure)
        else:
            self._report(Result(Ending.SUCCEEDED))

    def _wait_to_start(self) -> bool:
        """`queued_seconds` before the first task starts (None: until advanced); False if
        cancelled or stopped meanwhile."""
        with self.control.cond:
            self.control.held = True
        try:
            return hold(self.control, lambda: self.timings().queued_seconds)
        finally:
            with self.control.cond:
                self.control.held = False
                self.control.cond.notify_all()

    def _interrupted(self) -> bool:
        with self.control.cond:
            return self.control.cancel or self.control.stop

    def _start_tasks(self) -> None:
        changed = False
        while self.pending and len(self.running) < self.parallelism:
            index, number = self.pending.popleft()
            changed = True
            try:
                launch, notes = self.launcher.launch(index, number)
                write_notes(launch.log_path, notes)
                process = ReplicaProcess(launch, self.control.cond)
                process.start()
            except LaunchError as error:
                write_notes(self.launcher.logs() / f"task-{index}-attempt-{number}.jsonl", [error.message])
                self._attempt_failed(index, number, AttemptResult(message=error.message))
                continue
            self.started = True
            self.running[index] = _Attempt(index, number, process, time.monotonic() + self.timeout)
            previous = self.tasks.get(index)
            self._set_task(TaskState(
                index, TaskStatus.RUNNING, number,
                start_time=previous.start_time if previous else clock.now(),
                last_result=previous.last_result if previous else None,
            ))
        if changed:
            record_pids(self.launcher.directory, [a.process for a in self.running.values()])
            self._report()

    def _wait(self) -> None:
        """Until an attempt exits, one passes its timeout, or a cancel or stop arrives."""
        if not self.running:
            return
        with self.control.cond:
            while not (self.control.cancel or self.control.stop):
                if any(a.process.exit is not None for a in self.running.values()):
                    return
                remaining = min(a.deadline for a in self.running.values()) - time.monotonic()
                if remaining <= 0:
                    return
                self.control.cond.wait(remaining)

    def _collect(self) -> None:
        now = time.monotonic()
        expired = [a for a in self.running.values() if a.process.exit is None and a.deadline <= now]
        for attempt in expired:  # outside the condition: the kill waits out the grace period
            attempt.timed_out = True
            write_notes(attempt.process.launch.log_path, [
                f"The task exceeded its timeout of {self.timeout:g}s and was stopped."
            ])
        stop_all([a.process for a in expired], self.timings().cancel_grace_seconds)
        finished = [a for a in self.running.values() if a.process.exit is not None or a.timed_out]
        if not finished:
            return
        for attempt in finished:
            del self.running[attempt.index]
            attempt.process.close()
            exit_ = attempt.process.exit
            if exit_ is not None and exit_.returncode == 0 and not attempt.timed_out:
                self.counts = replace(self.counts, succeeded=self.counts.succeeded + 1)
                self._end_task(attempt.index, TaskStatus.SUCCEEDED, AttemptResult(exit_code=0))
                continue
            reason = TIMEOUT_REASON if attempt.timed_out or exit_ is None else exit_reason(exit_.returncode)
            code = None if exit_ is None else exit_.returncode
            self._attempt_failed(attempt.index, attempt.number, AttemptResult(
                exit_code=code if code is not None and code >= 0 else None,
                term_signal=-code if code is not None and code < 0 else None,
                message=reason, timed_out=attempt.timed_out,
            ))
        record_pids(self.launcher.directory, [a.process for a in self.running.values()])
        self._report()

    def _attempt_failed(self, index: int, number: int, outcome: AttemptResult) -> None:
        if number < self.max_retries:
            # Retried at once, ahead of tasks not yet started, in the slot it had.
            self.pending.appendleft((index, number + 1))
            self.counts = replace(self.counts, retried=self.counts.retried + 1)
            previous = self.tasks.get(index)
            self._set_task(TaskState(index, TaskStatus.PENDING, number + 1,
                                     start_time=previous.start_time if previous else None,
                                     last_result=outcome))
            return
        self.counts = replace(self.counts, failed=self.counts.failed + 1)
        self._end_task(index, TaskStatus.FAILED, outcome, attempt=number)
        if self.first_failure is None:
            execution_id = self.name.rsplit("/", 1)[-1]
            self.first_failure = Result(
                Ending.FAILED, f"Task {execution_id}-task{index} failed with message: {outcome.message}",
                timed_out=outcome.timed_out,
            )

    def _set_task(self, state: TaskState) -> None:
        self.tasks[state.index] = state
        self.changed[state.index] = state

    def _end_task(self, index: int, status: TaskStatus, outcome: AttemptResult | None,
                  attempt: int | None = None) -> None:
        previous = self.tasks.get(index, TaskState(index))
        self._set_task(replace(
            previous, status=status, completion_time=clock.now(),
            attempt=previous.attempt if attempt is None else attempt,
            last_result=outcome if outcome is not None else previous.last_result,
        ))

    def _stop(self) -> None:
        """Cancel or shutdown: stop every running tree; unfinished tasks count as cancelled."""
        with self.control.cond:
            cancelled = self.control.cancel
        processes = [a.process for a in self.running.values()]
        stop_all(processes, self.timings().cancel_grace_seconds)
        unfinished = len(self.running) + len({index for index, _ in self.pending})
        # Tasks that never started stay unreported: the service counts them cancelled.
        stopped = [*self.running, *(index for index, _ in self.pending if index in self.tasks)]
        for index in stopped:
            outcome = None
            if index in self.running:
                exit_ = self.running[index].process.exit
                code = None if exit_ is None else exit_.returncode
                outcome = AttemptResult(
                    exit_code=code if code is not None and code >= 0 else None,
                    term_signal=-code if code is not None and code < 0 else None,
                    message="The task was cancelled." if cancelled else STOPPED_MESSAGE,
                )
            self._end_task(index, TaskStatus.CANCELLED, outcome)
        self.running.clear()
        self.pending.clear()
        self.counts = replace(self.counts, cancelled=self.counts.cancelled + unfinished)
        if cancelled:
            self._report(Result(Ending.CANCELLED, "The execution was cancelled."))
        else:
            self._report(Result(Ending.STOPPED, STOPPED_MESSAGE))

    def _report(self, result: Result | None = None) -> None:
        counts = replace(self.counts, running=len(self.running))
        changed, self.changed = list(self.changed.values()), {}
        self.sink.execution_progress(self.name, counts, started=self.started, result=result,
                                     tasks=changed)
