"""`gcpjobs logs NAME [--follow] [--since]`: a job's log lines, read through Cloud Logging.

NAME is resolved as `gcpjobs status` resolves it, the local run history included: the lines
of a run whose job is gone (a Cloud Run Job not kept) are still in Cloud Logging, read by the
resource labels of the name the history holds. Each line is printed to stdout as
`TIMESTAMP SOURCE  text` (`SOURCE:stderr` for what the job wrote to stderr). With `--follow`
the command keeps printing until the job has ended, then exits with the job's code (0 only for
SUCCEEDED); without it, it prints what has been logged so far and exits 0.

`gcpjobs run` and `attach` show the lines with `follow.show_job_lines`, which also remembers
where they stopped (`cli/cursors.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated

import typer

from gcpjobs.cli.console import console, err_console
from gcpjobs.cli.options import (
    EmulatorOption,
    KindOption,
    NameArgument,
    ProjectOption,
    RegionOption,
    TransportOption,
    parse_kind,
    parse_transport,
    use_emulator,
)
from gcpjobs.cli.resolve import is_gone, locate, recall

if TYPE_CHECKING:
    from rich.console import Console

    from gcpjobs.clients.target import Target

def register(app: typer.Typer) -> None:
    app.command()(logs)


async def stream_job_lines(
    target: Target, name: str, out: Console, *, until: Callable[[], bool],
    since: datetime | None = None,
) -> None:
    """Print the job's lines on `out` as they are logged, each once, until `until()` (see
    `LogWatcher.follow_batches`: the jobs a process follows share its Logging reads), a batch
    at a time, so a job printing thousands of lines a second is kept up with. Raises
    GcpJobsError if Logging cannot be read."""
    from gcpjobs.cli.render import print_log_lines
    from gcpjobs.watch.logs import default_log_watcher

    async for batch in default_log_watcher().follow_batches(target, name, since=since,
                                                            until=until):
        await print_log_lines(out, batch)  # Ctrl-C is answered between chunks


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration back from now (`10m`, `1h30m`, `90s`) or an RFC 3339 time."""
    from gcpjobs.errors import SpecError
    from gcpjobs.specs.base import DURATION_HINT, parse_duration

    now = now or datetime.now(timezone.utc)
    text = value.strip()
    if text[:4].isdigit() and text[4:5] == "-":
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not an RFC 3339 time, e.g. 2025-01-31T12:00:00Z", param_hint="--since"
            ) from None
        return moment if moment.tzinfo is not None else moment.astimezone()
    try:
        span = parse_duration(text)
    except SpecError:
        raise typer.BadParameter(
            f"{value!r} is neither a duration nor an RFC 3339 time; {DURATION_HINT}, or give a "
            "time like 2025-01-31T12:00:00Z",
            param_hint="--since",
        ) from None
    if span.total_seconds() < 0:
        raise typer.BadParameter(f"{value!r} is negative; give how far back to start",
                                 param_hint="--since")
    return now - span


def logs(
    name: NameArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job has ended; "
                           "then exit 0 only if it SUCCEEDED.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines from this long ago on (10m, 2h, 1d) or from an "
                     "RFC 3339 time (2025-01-31T12:00:00Z)."),
    ] = None,
    project: ProjectOption = None,
    region: RegionOption = None,
    kind: KindOption = None,
    transport: TransportOption = "grpc",
    emulator: EmulatorOption = False,
) -> None:
    """Print a job's (or execution's) log lines: TIMESTAMP SOURCE  text, stderr marked."""
    use_emulator(emulator)
    chosen = parse_kind(kind)
    mode = parse_transport(transport)
    start = parse_since(since) if since is not None else None

    async def show() -> int:
        from gcpjobs.cli.render import print_log_lines
        from gcpjobs.clients.logs import AsyncLogReader, ended_since
        from gcpjobs.errors import GcpJobsError
        from gcpjobs.results import JobResult

        async def recalled(error: GcpJobsError) -> int:
            """The lines of a run the service no longer has, as Logging still holds them."""
            from gcpjobs.clients.target import resolve_target

            record = recall(name, chosen, project, region, error)
            async with AsyncLogReader(await asyncio.to_thread(resolve_target,
                                                              project=project)) as reader:
                await print_log_lines(console, await reader.entries(record.name, since=start))
            if not follow:
                return 0
            if not record.ended:
                err_console.print(f"{record.state.value} (last seen; its end was not recorded)  "
                                  f"{record.name}", highlight=False, soft_wrap=True)
                return 1
            err_console.print(f"{record.state.value}  {record.name}", highlight=False,
                              soft_wrap=True)
            return JobResult(record.status).exit_code

        try:
            client, resource = await locate(name, chosen, project, region, mode)
        except GcpJobsError as error:
            if not is_gone(error):
                raise
            return await recalled(error)
        async with client:
            try:
                known = await client.get(resource)  # an unknown job is an error, not silence
            except GcpJobsError as error:
                if not is_gone(error):
                    raise
                return await recalled(error)
            target = client.target
            if not follow:
                async with AsyncLogReader(target) as reader:
                    await print_log_lines(console,
                                          await reader.entries(resource, since=start))
                return 0
            waiting = asyncio.ensure_future(client.wait(resource, known=known))
            try:
                await stream_job_lines(target, resource, console, since=start,
                                       until=ended_since(waiting.done, target))
            finally:
                if not waiting.done():
                    waiting.cancel()
            result = await waiting
            err_console.print(f"{result.state.value}  {resource}", highlight=False, soft_wrap=True)
            return result.exit_code

    raise typer.Exit(asyncio.run(show()))
