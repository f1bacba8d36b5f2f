"""`gcpjobs run`: submit a job and follow it live until it ends.

A first Ctrl-C asks the service to cancel the job, after a short grace period, and keeps
following it to its final state (CANCELLED, or whatever it reached first). A second Ctrl-C
within the grace period stops following and leaves the job running, saying so; one after the
cancel was sent stops following a job that is already stopping. The exit code is 0 only for
SUCCEEDED, and 130 once a Ctrl-C has cancelled the job or left it running.

While it follows, the job's log lines are printed as they are logged (`TIMESTAMP SOURCE  text`),
on stderr with the state lines; the result goes to stdout.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
from contextlib import suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from gcpjobs.cli.console import announce_target, console, err_console
from gcpjobs.cli.logs_commands import stream_job_lines_tolerantly
from gcpjobs.cli.render import format_duration, format_time, print_result, state_text
from gcpjobs.clients.logs import ended_since
from gcpjobs.errors import ApiError, GcpJobsError
from gcpjobs.states import JobState

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient
    from gcpjobs.results import JobResult, JobStatus
    from gcpjobs.specs.jobfile import JobSpec
    from gcpjobs.watch.events import StateChange

EXIT_INTERRUPTED = 130
# What builds each kind's create request (its protos are most of the import cost).
REQUEST_MODULES = {"vertex": "gcpjobs.requests.vertex", "cloud-run": "gcpjobs.requests.cloudrun"}
# Long enough to press Ctrl-C twice on purpose, short enough not to keep a GPU job billing.
CANCEL_GRACE_SECONDS = 2.0


class _LiveLine:
    """The one line that shows the current state and how long the job has been in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = JobState.QUEUED
        self.since = datetime.now(timezone.utc)
        self.note = ""

    def __rich__(self) -> Spinner:
        elapsed = format_duration(datetime.now(timezone.utc) - self.since)
        text = Text.assemble(
            state_text(self.state), f"  {elapsed}  ", (self.name, "dim"), (self.note, "yellow")
        )
        return Spinner("dots", text=text)


async def follow_job(client: JobClient, job: JobSpec, *, detach: bool) -> int:
    async with client:
        # Say where the job goes before anything is sent. Resolving may boot the embedded
        # emulator; the request's modules load meanwhile, as `create` would load them.
        resolving = asyncio.ensure_future(asyncio.to_thread(lambda: client.target))
        importlib.import_module(REQUEST_MODULES[job.kind])
        announce_target(await resolving, job.kind, job.region)
        status = await client.create(job)
        what = "started execution" if job.kind == "cloud-run" else "created"
        err_console.print(f"{what} {status.name}", highlight=False, soft_wrap=True)
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
    live = Live(line, console=err_console, refresh_per_second=8, transient=True)
    waiting: asyncio.Task[JobResult] | None = None
    cancel_requests: list[asyncio.Task[None]] = []
    pending_cancel: asyncio.TimerHandle | None = None
    streaming: asyncio.Future[None] | None = None

    def on_change(change: StateChange) -> None:
        line.state = change.current
        line.since = change.at or change.observed_at
        stamp = format_time(change.at or change.observed_at)
        live.console.print(Text.assemble(f"{stamp}  ", state_text(change.current)))

    def send_cancel() -> None:
        line.note = "  cancelling"
        live.console.print("cancel requested; waiting for the job to stop", style="yellow")
        cancel_requests.append(asyncio.ensure_future(client.cancel(name)))

    def on_interrupt() -> None:
        nonlocal pending_cancel
        if pending_cancel is None and not cancel_requests:
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
            # The job's lines, through the Live's console so the state line stays intact.
            target = client.target
            streaming = asyncio.ensure_future(stream_job_lines_tolerantly(
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
            await streaming  # its last read comes after the end: no line is lost
        if pending_cancel is not None:
            pending_cancel.cancel()  # the job ended inside the grace period
        for request in cancel_requests:
            # A refused cancel means the job had already ended; the result says how.
            with suppress(GcpJobsError):
                await request
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if streaming is not None and not streaming.done():
            streaming.cancel()
            with suppress(asyncio.CancelledError):
                await streaming
    await client.finish(job, name)  # e.g. a Cloud Run Job that is not kept is deleted
    print_result(console, result)
    # A job the user stopped with Ctrl-C was interrupted, whatever state the cancel left it in
    # (the README's exit codes: 130). One that ended inside the grace period, before the
    # cancel was sent, keeps its own code.
    return EXIT_INTERRUPTED if cancel_requests else result.exit_code


class _no_live:
    """Stand-in for `Live` when stderr is not a terminal: state lines are still printed."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
