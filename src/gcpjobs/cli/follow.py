"""`gcpjobs run`: submit a job and follow it live until it ends.

A first Ctrl-C asks the service to cancel the job, after a short grace period, and keeps
following it to its final state (CANCELLED, or whatever it reached first). A second Ctrl-C
within the grace period stops following and leaves the job running, saying so; one after the
cancel was sent stops following a job that is already stopping. The exit code is 0 only for
SUCCEEDED, and 130 once a Ctrl-C has cancelled the job or left it running.

While it follows, the job's log lines are printed as they are logged (`TIMESTAMP SOURCE  text`),
on stderr with the state lines (each saying how long the job was in the state before); the
result goes to stdout, after the last line. In a terminal a line at the bottom shows the state,
how long the job has been in it and, for Cloud Run, its tasks. Lines come in batches, each
printed at once: a job that prints thousands of lines a second is kept up with (or, where
Logging's read quota cannot carry them, said to be behind), and a Ctrl-C while the last lines
of an ended job are shown stops at once.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from gcpjobs.cli.console import announce_target, console, err_console
from gcpjobs.cli.render import (
    format_duration,
    format_time,
    print_log_lines,
    print_result,
    state_text,
)
from gcpjobs.clients.logs import ended_since, poll_interval
from gcpjobs.errors import ApiError, GcpJobsError
from gcpjobs.kinds import kind_entry
from gcpjobs.states import JobState

if TYPE_CHECKING:
    from rich.console import Console

    from gcpjobs.clients.logs import LogLine
    from gcpjobs.clients.protocol import JobClient
    from gcpjobs.clients.target import Target
    from gcpjobs.core.events import StateChange
    from gcpjobs.results import JobResult, JobStatus, TaskCounts
    from gcpjobs.specs.jobfile import JobSpec

EXIT_INTERRUPTED = 130
# Long enough to press Ctrl-C twice on purpose, short enough not to keep a GPU job billing.
CANCEL_GRACE_SECONDS = 2.0
# The saved cursor (for `gcpjobs attach` after a killed run) is written at most this often:
# it holds the ids of every line of the last seconds, so writing it for each line of a job
# that prints thousands a second took minutes.
CURSOR_SAVE_SECONDS = 1.0
# How far behind the job its newest shown line may be before the user is told.
BEHIND_SECONDS = 30.0
# What a service note says first, which task or replica it is about.
_NOTE_SUBJECT = re.compile(r"^[\w.-]+: ")


class _LiveLine:
    """The one line that shows the current state, how long the job has been in it and (Cloud
    Run) its tasks, after a spinner that turns."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = JobState.QUEUED
        self.since = datetime.now(timezone.utc)
        self.tasks: TaskCounts | None = None
        self.note = ""
        # One spinner for the whole follow: its frame comes from the time since it was made,
        # so a new one each refresh never turned.
        self._spinner = Spinner("dots")

    def __rich__(self) -> Spinner:
        elapsed = format_duration(datetime.now(timezone.utc) - self.since)
        tasks = f"{self.tasks}  " if self.tasks is not None else ""
        self._spinner.update(text=Text.assemble(
            state_text(self.state), f"  {elapsed}  {tasks}", (self.name, "dim"),
            (self.note, "yellow")))
        return self._spinner


async def show_job_lines(
    target: Target, name: str, out: Console, *, until: Callable[[], bool], prefix: str = "",
) -> None:
    """Print the job's lines on `out` as they are logged, each once, until `until()`, each
    after `prefix` (a job's id, when several are followed): what `gcpjobs run` and `attach`
    show. Where the last run or attach of the job on this machine stopped is where it goes
    on; the emulator's notes, the same for each task, are shown once. If Logging cannot be
    read the lines stop with a note; it never fails the command."""
    from gcpjobs.cli.cursors import load_cursor, save_cursor
    from gcpjobs.watch.logs import default_log_watcher

    cursor = load_cursor(name)
    notes: set[str] = set()
    loop = asyncio.get_running_loop()
    saved_at = -CURSOR_SAVE_SECONDS
    later: asyncio.TimerHandle | None = None

    def save() -> None:
        nonlocal saved_at, later
        later = None
        save_cursor(name, cursor)
        saved_at = time.monotonic()
    began = time.time()  # older lines (attach shows a job's from its start) are no lag
    behind_said = False
    try:
        async for batch in default_log_watcher().follow_batches(target, name, until=until,
                                                                 cursor=cursor):
            shown: list[LogLine] = []
            for line in batch:
                if line.system:
                    # "task-1-attempt-0: runs ..." says for each task what it said for the first.
                    note = _NOTE_SUBJECT.sub("", line.text, count=1)
                    if note in notes:
                        continue
                    notes.add(note)
                shown.append(line)
            await print_log_lines(out, shown, prefix=prefix)
            newest = batch[-1].timestamp.timestamp()
            lag = time.time() - newest
            if newest > began and lag > BEHIND_SECONDS and not behind_said and not until():
                behind_said = True
                out.print(f"the job's lines are shown {lag:.0f}s behind it: it prints faster "
                          "than Cloud Logging lets them be read; all of them will be shown",
                          style="yellow", markup=False, highlight=False, soft_wrap=True)
            # Saved at once after a quiet second, else a second after the last save: never
            # more than a second behind what was shown, whatever the rate.
            wait = saved_at + CURSOR_SAVE_SECONDS - time.monotonic()
            if wait <= 0:
                save()
            elif later is None:
                later = loop.call_later(wait, save)
    except GcpJobsError as error:
        out.print(f"job logs not shown from here on: {error}", style="yellow", markup=False,
                  highlight=False, soft_wrap=True)
    finally:
        if later is not None:
            later.cancel()
        save_cursor(name, cursor)  # however the lines end: the cursor claims only shown ones


async def _watch_tasks(client: JobClient, name: str, line: _LiveLine, every: float) -> None:
    """Keep the live line's task counts current (a state change alone says nothing of the
    tasks that finished in between)."""
    while True:
        await asyncio.sleep(every)
        with suppress(GcpJobsError):
            status = await client.get(name)
            if status.tasks is not None:
                line.tasks = status.tasks


async def follow_job(client: JobClient, job: JobSpec, *, detach: bool) -> int:
    async with client:
        # Say where the job goes before anything is sent. Resolving may boot the embedded
        # emulator; the request's modules load meanwhile, as `create` would load them.
        resolving = asyncio.ensure_future(asyncio.to_thread(lambda: client.target))
        entry = kind_entry(job.kind)
        importlib.import_module(entry.request_module)  # most of a submission's import cost
        announce_target(await resolving, job.kind, job.region)
        status = await client.create(job)
        err_console.print(f"{entry.started_word} {status.name}", highlight=False,
                          soft_wrap=True)
        if detach:
            console.print(status.name, markup=False, soft_wrap=True)
            err_console.print(
                f"follow it with: gcpjobs status {status.job_id} --region {job.region}",
                highlight=False,
            )
            return 0
        return await _follow(client, job, status)


async def _follow(client: JobClient, job: JobSpec, created: JobStatus) -> int:
    name = created.name
    line = _LiveLine(name)
    line.tasks = created.tasks
    live = Live(line, console=err_console, refresh_per_second=8, transient=True)
    waiting: asyncio.Task[JobResult] | None = None
    cancel_requests: list[asyncio.Task[None]] = []
    pending_cancel: asyncio.TimerHandle | None = None
    streaming: asyncio.Future[None] | None = None
    tasks_watch: asyncio.Task[None] | None = None
    final: list[Text] = []  # the end's state line, printed after the last log line
    lines_stopped = False  # a Ctrl-C while the ended job's last lines were shown

    def state_line(change: StateChange) -> Text:
        stamp = format_time(change.at or change.observed_at)
        text = Text.assemble(f"{stamp}  ", state_text(change.current))
        if change.previous is not None:
            spent = (change.at or change.observed_at) - line.since
            text.append(f"  ({change.previous.value} for {format_duration(spent)})", "dim")
        if change.status.tasks is not None and change.current is not JobState.QUEUED:
            text.append(f"  {change.status.tasks}")
        return text

    def on_change(change: StateChange) -> None:
        text = state_line(change)
        line.state = change.current
        line.since = change.at or change.observed_at
        if change.status.tasks is not None:
            line.tasks = change.status.tasks
        if change.current.is_terminal:
            final.append(text)  # the log lines still coming were logged before it
        else:
            live.console.print(text)

    def send_cancel() -> None:
        line.note = "  cancelling"
        live.console.print("cancel requested; waiting for the job to stop", style="yellow")
        cancel_requests.append(asyncio.ensure_future(client.cancel(name)))

    def on_interrupt() -> None:
        nonlocal pending_cancel, lines_stopped
        if waiting is not None and waiting.done() and streaming is not None:
            # The job has ended: nothing to cancel; stop showing its last lines now.
            lines_stopped = True
            streaming.cancel()
        elif pending_cancel is None and not cancel_requests:
            line.note = "  cancelling (Ctrl-C again to leave the job running)"
            live.console.print(
                f"cancelling in {CANCEL_GRACE_SECONDS:.0f}s; press Ctrl-C again to leave the job "
                "running",
                style="yellow",
            )
            pending_cancel = loop.call_later(CANCEL_GRACE_SECONDS, send_cancel)
        elif waiting is not None:
            waiting.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        with live if err_console.is_terminal else _no_live():
            waiting = asyncio.ensure_future(
                client.wait(name, on_change=on_change, known=created)
            )
            target = client.target
            if kind_entry(job.kind).live_task_counts and err_console.is_terminal:
                tasks_watch = asyncio.ensure_future(
                    _watch_tasks(client, name, line, max(1.0, poll_interval(target))))
            # The job's lines, through the Live's console so the state line stays intact.
            streaming = asyncio.ensure_future(show_job_lines(
                target, name, live.console, until=ended_since(waiting.done, target)))
            try:
                result = await waiting
            except ApiError as error:
                from gcpjobs.clients.retry import TRANSIENT_CODES

                if error.code not in TRANSIENT_CODES:
                    raise
                # The service stopped answering (see `cli_retry_policy`): say so now, and
                # that the job itself was left as it was.
                raise GcpJobsError(
                    f"lost contact while following {name}: {error}; the job was not "
                    "cancelled: follow it again with `gcpjobs attach` once it answers"
                ) from error
            except asyncio.CancelledError:
                if not cancel_requests:
                    if pending_cancel is not None:
                        pending_cancel.cancel()
                    message = (
                        f"left running (not cancelled): {name}\n"
                        f"cancel it with: gcpjobs cancel {name}"
                    )
                else:
                    for request in cancel_requests:
                        with suppress(Exception):
                            await request
                    message = (
                        f"stopped waiting; the job was asked to cancel and is stopping: {name}\n"
                        f"check it with: gcpjobs status {name}"
                    )
                err_console.print(message, style="yellow", highlight=False, soft_wrap=True)
                return EXIT_INTERRUPTED
            if tasks_watch is not None:
                tasks_watch.cancel()
            # Its last read comes after the end: no line is lost (unless a Ctrl-C stops it).
            await asyncio.wait({streaming})
            for text in final:
                live.console.print(text)
            if lines_stopped:
                live.console.print(f"stopped showing the lines of {name}, which had ended",
                                   style="yellow", highlight=False, soft_wrap=True)
        if pending_cancel is not None:
            pending_cancel.cancel()  # the job ended inside the grace period
        for request in cancel_requests:
            # A refused cancel means the job had already ended; the result says how.
            with suppress(GcpJobsError):
                await request
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        for task in (streaming, tasks_watch):
            if task is not None and not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
    await client.finish(job, name)  # e.g. a Cloud Run Job that is not kept is deleted
    print_result(console, result)
    # A job the user stopped with Ctrl-C was interrupted, whatever state the cancel left it in
    # (the README's exit codes: 130). One that ended inside the grace period, before the
    # cancel was sent, keeps its own code.
    return EXIT_INTERRUPTED if cancel_requests or lines_stopped else result.exit_code


class _no_live:
    """Stand-in for `Live` when stderr is not a terminal: state lines are still printed."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
