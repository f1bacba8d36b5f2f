"""`gcpjobs attach`: follow again the running jobs gcpjobs submitted, after the `gcpjobs run`
that followed them was killed (or its terminal closed).

Jobs are found by the submission-id label every gcpjobs job carries, so nothing has to be
remembered locally: any machine with access to the project can attach. All of them are
followed by one shared watcher (one list call per region per cycle, whatever their number),
and their log lines are shown from each job's start, each once.
Attaching is passive: Ctrl-C stops following and leaves the jobs running.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gcpjobs.cli.console import console, err_console
from gcpjobs.cli.options import (
    EmulatorOption,
    KindOption,
    ProjectOption,
    RegionOption,
    TransportOption,
    use_emulator,
)
from gcpjobs.cli.options import parse_kind as _kind
from gcpjobs.cli.options import parse_transport as _transport
from gcpjobs.cli.resolve import announced_target, cli_retry_policy, skip_unserved_kind
from gcpjobs.clients.kinds import KINDS

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient
    from gcpjobs.results import JobResult, JobStatus

EXIT_INTERRUPTED = 130


def register(app: typer.Typer) -> None:
    app.command()(attach)


async def running_submissions(client: JobClient, kind: str) -> list[JobStatus]:
    """The jobs (Vertex) or executions (Cloud Run) gcpjobs submitted that have not ended."""
    from gcpjobs.kinds import kind_entry
    from gcpjobs.specs.labels import SUBMISSION_LABEL

    unended = kind_entry(kind).unended_list_filter()
    lister: Any = client  # every kind's client lists; `filter=` where the kind has one
    listing = lister.list(filter=unended) if unended is not None else lister.list()
    found: list[JobStatus] = []
    async for status in listing:
        # What a filter already asked the service for, checked again for a kind without one.
        if SUBMISSION_LABEL in status.labels and not status.is_terminal:
            found.append(status)
    return found


def attach(
    project: ProjectOption = None,
    region: RegionOption = None,
    kind: KindOption = None,
    transport: TransportOption = "grpc",
    wait: Annotated[bool, typer.Option(
        help="Follow the jobs until they end (--no-wait: only list them).")] = True,
    emulator: EmulatorOption = False,
) -> None:
    """Follow again the running jobs gcpjobs submitted (found by their label) until they end."""
    from gcpjobs.cli.follow import show_job_lines
    from gcpjobs.cli.render import print_job_table, print_result
    from gcpjobs.clients.kinds import client_for_kind
    from gcpjobs.clients.logs import ended_since
    from gcpjobs.errors import GcpJobsError
    from gcpjobs.watch.shared import default_watcher

    use_emulator(emulator)
    chosen = _kind(kind)
    kinds = [chosen] if chosen else list(KINDS)
    mode = _transport(transport)

    async def follow() -> int:
        target = await announced_target(chosen, project, region)
        clients = {k: client_for_kind(k, project=project, region=region or "us-central1",
                                      transport=mode, target=target,
                                      retry=cli_retry_policy()) for k in kinds}
        try:
            found: list[tuple[JobClient, JobStatus]] = []
            for listed_kind, client in clients.items():
                try:
                    statuses = await running_submissions(client, listed_kind)
                except GcpJobsError as error:
                    skip_unserved_kind(error, listed_kind, asked_for=chosen is not None,
                                       what="looked at")
                    continue
                found.extend((client, status) for status in statuses)
            if not found:
                err_console.print("no running jobs submitted by gcpjobs here", highlight=False)
                return 0
            print_job_table(console, [status for _, status in found])
            if not wait:
                return 0
            err_console.print(f"attached to {len(found)} job(s); Ctrl-C stops following "
                              "(the jobs keep running)", highlight=False)
            watcher = default_watcher()

            def report(change: object) -> None:
                console.print(str(change), highlight=False, soft_wrap=True)

            async def follow_one(client: JobClient, status: JobStatus) -> JobResult:
                """The job's state changes and its log lines (all of them, from its start),
                until it ends."""
                waiting = asyncio.ensure_future(
                    watcher.wait(client, status.name, on_change=report, known=status))
                target = client.target
                prefix = f"{status.job_id}  " if len(found) > 1 else ""
                await show_job_lines(
                    target, status.name, console, prefix=prefix,
                    until=ended_since(waiting.done, target))
                return await waiting

            results: list[JobResult] = await asyncio.gather(*(
                follow_one(client, status) for client, status in found))
            for result in results:
                print_result(console, result)
            return 0 if all(result.succeeded for result in results) else 1
        finally:
            for client in clients.values():
                await client.close()

    try:
        code = asyncio.run(follow())
    except KeyboardInterrupt:
        err_console.print("stopped following; the jobs keep running", style="yellow",
                          highlight=False)
        code = EXIT_INTERRUPTED
    raise typer.Exit(code)
