"""How the CLI shows statuses, results and job lists."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from rich.style import Style
from rich.table import Table
from rich.text import Text

from gcpjobs.states import JobState

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.console import Console, ConsoleOptions, RenderResult

    from gcpjobs.clients.logs import LogLine
    from gcpjobs.results import JobResult, JobStatus

STATE_STYLES: dict[JobState, str] = {
    JobState.QUEUED: "cyan",
    JobState.PENDING: "cyan",
    JobState.RUNNING: "blue",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLING: "yellow",
    JobState.CANCELLED: "yellow",
    JobState.EXPIRED: "red",
}


def state_text(state: JobState) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, "white"))


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def format_time(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def log_line_text(line: LogLine) -> Text:
    """`TIMESTAMP SOURCE  text`: the time in UTC (RFC 3339, milliseconds), the replica or task;
    a line the job wrote to stderr has `SOURCE:stderr` and is red."""
    stamp = _stamp(line.timestamp)
    if line.stderr:
        return Text.assemble((stamp, "dim"), " ", (f"{line.source}:stderr", "red"), "  ",
                             (line.text, "red"))
    return Text.assemble((stamp, "dim"), " ", (line.source, "cyan"), "  ", line.text)


class LogLines:
    """Many lines as `log_line_text` shows them, each after `prefix`, as one renderable.

    It hands rich its segments as they are: a rich `Text` of a thousand lines is split and
    measured line by line again (about 300 µs a line, on a busy machine), which is what made
    a job that prints 10,000 lines a second impossible to keep up with."""

    def __init__(self, lines: Iterable[LogLine], *, prefix: str = "") -> None:
        self.lines = list(lines)
        self.prefix = prefix

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.control import strip_control_codes
        from rich.segment import Segment

        stamp_style, source_style, error_style = Style(dim=True), Style(color="cyan"), Style(color="red")
        space, gap, newline = Segment(" "), Segment("  "), Segment.line()
        prefix = Segment(self.prefix) if self.prefix else None
        for line in self.lines:
            if prefix is not None:
                yield prefix
            yield Segment(_stamp(line.timestamp), stamp_style)
            yield space
            text = strip_control_codes(line.text)
            if line.stderr:
                yield Segment(f"{line.source}:stderr", error_style)
                yield gap
                yield Segment(text, error_style)
            else:
                yield Segment(line.source, source_style)
                yield gap
                yield Segment(text)
            yield newline


# Lines printed in one go; between two, Ctrl-C and the live line get their turn.
PRINT_CHUNK = 1000


async def print_log_lines(out: Console, lines: Sequence[LogLine], *, prefix: str = "") -> None:
    """Print `lines` as `LogLines`, PRINT_CHUNK at a time, yielding to the event loop between
    chunks: what `run`, `attach` and `logs` show of a job's lines, however many arrive."""
    import asyncio

    for start in range(0, len(lines), PRINT_CHUNK):
        out.print(LogLines(lines[start:start + PRINT_CHUNK], prefix=prefix), soft_wrap=True,
                  end="")
        await asyncio.sleep(0)


def _stamp(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def print_status(console: Console, status: JobStatus) -> None:
    line = Text.assemble(state_text(status.state), "  ", status.name)
    console.print(line, soft_wrap=True)
    console.print(f"  display name  {status.display_name}", markup=False, soft_wrap=True)
    console.print(f"  created       {format_time(status.create_time)}", markup=False)
    console.print(f"  started       {format_time(status.start_time)}", markup=False)
    console.print(f"  ended         {format_time(status.end_time)}", markup=False)
    if status.tasks is not None:
        console.print(f"  tasks         {status.tasks}", markup=False)
    if status.error is not None:
        console.print(
            f"  error         code {status.error.code}: {status.error.message}",
            markup=False,
            soft_wrap=True,
        )
    for node, uri in status.web_access_uris.items():
        console.print(f"  web access    {node}: {uri}", markup=False, soft_wrap=True)


def print_result(console: Console, result: JobResult) -> None:
    status = result.status
    console.print(Text.assemble(state_text(status.state), "  ", status.name), soft_wrap=True)
    console.print(
        f"  queued {format_duration(result.queued_duration)} · "
        f"ran {format_duration(result.run_duration)}",
        markup=False,
    )
    if status.tasks is not None:
        console.print(f"  {status.tasks}", markup=False)
    if status.error is not None and not result.succeeded:
        console.print(
            f"  error (code {status.error.code}): {status.error.message}",
            style="red",
            markup=False,
            soft_wrap=True,
        )
    for node, uri in status.web_access_uris.items():
        console.print(f"  web access  {node}: {uri}", markup=False, soft_wrap=True)


JOB_COLUMNS = ("ID", "KIND", "DISPLAY NAME", "STATE", "CREATED", "RAN")


def print_job_table(console: Console, statuses: Iterable[JobStatus]) -> None:
    """One row a job. In a terminal a rich table (a long display name folds, never cut);
    anywhere else (a pipe, a file) plain aligned columns at whatever width they need, one
    line a job, so `grep`/`awk` see every name whole."""
    rows: list[tuple[str, ...]] = []
    for status in statuses:
        ran = (
            status.end_time - status.start_time
            if status.start_time and status.end_time
            else None
        )
        rows.append((status.job_id, status.kind, status.display_name, status.state.value,
                     format_time(status.create_time), format_duration(ran)))
    if not rows:
        console.print("no jobs", style="dim")
        return
    if not console.is_terminal:
        widths = [max(len(row[i]) for row in [JOB_COLUMNS, *rows]) for i in range(len(JOB_COLUMNS))]
        for row in [JOB_COLUMNS, *rows]:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            console.out(line.rstrip(), highlight=False)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in JOB_COLUMNS:
        table.add_column(column, no_wrap=column != "DISPLAY NAME",
                         overflow="fold" if column == "DISPLAY NAME" else "ellipsis")
    for row in rows:
        table.add_row(*row[:3], state_text(JobState(row[3])), *row[4:])
    console.print(table)


def status_to_json(status: JobStatus) -> str:
    return json.dumps(_status_document(status))


def statuses_to_json(statuses: Iterable[JobStatus]) -> str:
    """`list --json`: an array of what `status --json` prints for each."""
    return json.dumps([_status_document(status) for status in statuses])


def _status_document(status: JobStatus) -> dict[str, object]:
    def stamp(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return (
        {
            "name": status.name,
            "kind": status.kind,
            "displayName": status.display_name,
            "state": status.state.value,
            "createTime": stamp(status.create_time),
            "startTime": stamp(status.start_time),
            "endTime": stamp(status.end_time),
            "updateTime": stamp(status.update_time),
            "error": (
                {"code": status.error.code, "message": status.error.message}
                if status.error
                else None
            ),
            "labels": dict(status.labels),
            "webAccessUris": dict(status.web_access_uris),
            "tasks": dataclasses.asdict(status.tasks) if status.tasks else None,
        }
    )
