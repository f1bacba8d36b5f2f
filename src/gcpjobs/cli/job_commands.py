"""`gcpjobs run|preview|status|list|cancel`: the job commands, for both kinds of job.

A job file's `kind` decides which service runs it. Which job a name given to `status` or
`cancel` means is decided in `cli/resolve.py` (shared with `logs`, `attach` and `step`).

A job the service no longer has (a Cloud Run Job that was not kept is deleted with its
executions once it ends; a Vertex job can be deleted) is looked up in the local run history
(gcpjobs.history) by `status`, `logs` and `step result`, which then say that their answer is
the history's; `gcpjobs history` lists the runs it holds.

Every command that talks to a service first says where (`target: ...`, on stderr);
`--emulator` (or `GCPJOBS_TARGET=emulator`) sends everything to the local emulator even when
a Google project is configured.

Each command loads what it needs inside its body: the spec models for `preview`, the Google
clients only once a request is about to be sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from gcpjobs.cli.resolve import (
    announced_target,
    is_gone,
    job_client,
    locate,
    recall,
    remember_end,
    skip_unserved_kind,
)
from gcpjobs.clients.kinds import KINDS
from gcpjobs.errors import GcpJobsError

if TYPE_CHECKING:
    from gcpjobs.clients.target import Target
    from gcpjobs.results import JobStatus
    from gcpjobs.specs.jobfile import JobSpec


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(preview)
    app.command()(status)
    app.command(name="list")(list_jobs)
    app.command()(cancel)
    app.command(name="history")(history)


FileArgument = Annotated[
    Path | None,
    typer.Argument(
        help="Job file (YAML: `kind: vertex` / `kind: cloud-run`, a CustomJobSpec, a Cloud Run "
        "v1 Job body); with --template, a YAML mapping of the template's variables.",
        show_default=False,
    ),
]
TemplateOption = Annotated[
    str | None,
    typer.Option(
        "--template", "-t",
        help="A base job template file, or `vertex` / `cloud-run` for the default one.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s",
        help="KEY=VALUE (repeatable): a template variable, or without --template a job field. "
        "VALUE is read as YAML (4, true, [a, b]).",
    ),
]


def _load(
    path: Path | None,
    template: str | None,
    assignments: list[str] | None,
    name: str | None,
    project: str | None,
    region: str | None,
) -> JobSpec:
    """The job a command is about: a job file, or a template rendered with values."""
    from gcpjobs.specs.templates import parse_assignments

    settings = parse_assignments(assignments or [])
    if template is not None:
        job = _render(template, path, settings)
    elif path is None:
        raise typer.BadParameter("give a job file, or --template", param_hint="FILE")
    else:
        from gcpjobs.specs.jobfile import load_job_file

        job = load_job_file(path)
        if settings:
            job = job.with_overrides(**settings)
    overrides = {
        key: value
        for key, value in {"name": name, "project": project, "region": region}.items()
        if value is not None
    }
    return job.with_overrides(**overrides) if overrides else job


def _render(template: str, values_file: Path | None, overrides: dict[str, Any]) -> JobSpec:
    from gcpjobs.errors import JobFileError
    from gcpjobs.kinds import known_kinds
    from gcpjobs.specs.templates import JobTemplate, default_template

    chosen = (
        default_template(template)
        if template in known_kinds() and not Path(template).exists()
        else JobTemplate.load(template)
    )
    values: dict[str, Any] = {}
    if values_file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(values_file.read_text(encoding="utf-8"))
        except OSError as error:
            raise JobFileError(f"{values_file}: cannot read it ({error.strerror})") from None
        except yaml.YAMLError as error:
            raise JobFileError(f"{values_file}: not YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise JobFileError(
                f"{values_file}: with --template, the file holds the template's variables as a "
                "mapping (image: ..., machine_type: ...)"
            )
        values = loaded
    spec: JobSpec = chosen.render_spec(values, overrides)  # type: ignore[assignment]
    return spec


def preview(
    file: FileArgument = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="yaml or json.")] = "yaml",
    template: TemplateOption = None,
    assignments: SetOption = None,
    name: Annotated[str | None, typer.Option(help="Override the job's name.")] = None,
    project: ProjectOption = None,
    region: RegionOption = None,
    emulator: EmulatorOption = False,
) -> None:
    """Show the exact request a job makes (CreateCustomJob or CreateJob), secrets redacted.
    Sends nothing."""
    from gcpjobs.clients.target import planned_project

    if fmt not in ("yaml", "json"):
        raise typer.BadParameter(f"{fmt!r} is not a format; use yaml or json", param_hint="--format")
    use_emulator(emulator)
    job = _load(file, template, assignments, name, project, region)
    if job.project is None:
        # The project `run` would send it to, decided the same way (nothing is started).
        job = job.with_overrides(project=planned_project())
    console.print(job.preview(fmt=fmt), markup=False, soft_wrap=True)


def run(
    file: FileArgument = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Submit and return without waiting.")
    ] = False,
    template: TemplateOption = None,
    assignments: SetOption = None,
    name: Annotated[str | None, typer.Option(help="Override the job's name.")] = None,
    project: ProjectOption = None,
    region: RegionOption = None,
    transport: TransportOption = "grpc",
    emulator: EmulatorOption = False,
) -> None:
    """Submit a job, follow it live, and exit 0 only if it SUCCEEDED.

    Ctrl-C asks the service to cancel the job (exit 130); a second Ctrl-C stops waiting and
    leaves it running.
    """
    from gcpjobs.cli.follow import follow_job

    use_emulator(emulator)
    job = _load(file, template, assignments, name, project, region)
    client = job_client(job.kind, job.project, job.region, parse_transport(transport))
    code = asyncio.run(follow_job(client, job, detach=detach))
    raise typer.Exit(code)


def status(
    name: NameArgument,
    project: ProjectOption = None,
    region: RegionOption = None,
    kind: KindOption = None,
    transport: TransportOption = "grpc",
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    emulator: EmulatorOption = False,
) -> None:
    """Show one job's (or execution's) state, times, tasks and error."""
    from gcpjobs.cli.render import print_status, status_to_json

    use_emulator(emulator)
    chosen = parse_kind(kind)

    async def fetch() -> tuple[JobStatus, bool]:
        try:
            client, resource = await locate(name, chosen, project, region,
                                             parse_transport(transport))
            async with client:
                live = await client.get(resource)
                remember_end(client.target, live)
                return live, False
        except GcpJobsError as error:
            if not is_gone(error):
                raise
            return recall(name, chosen, project, region, error).status, True

    job_status, from_history = asyncio.run(fetch())
    if as_json:
        import json

        document = json.loads(status_to_json(job_status))
        document["source"] = "local-history" if from_history else "service"
        console.print_json(json.dumps(document))
    else:
        print_status(console, job_status)


def list_jobs(
    project: ProjectOption = None,
    region: RegionOption = None,
    filter_text: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help='Vertex list filter, e.g. state="JOB_STATE_RUNNING" (Vertex jobs only).',
        ),
    ] = None,
    state: Annotated[
        str | None, typer.Option(help="Only jobs in this state (RUNNING, FAILED …).")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="vertex or cloud-run (default: both)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many jobs.", min=1)] = 50,
    transport: TransportOption = "grpc",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of statuses (as status --json).")
    ] = False,
    emulator: EmulatorOption = False,
) -> None:
    """List Vertex jobs and Cloud Run executions, newest first."""
    from gcpjobs.cli.render import print_job_table, statuses_to_json
    from gcpjobs.kinds import kind_entry
    from gcpjobs.states import JobState

    chosen = parse_kind(kind)
    kinds: list[str] = [chosen] if chosen else list(KINDS)
    if filter_text:
        # Only a kind whose service takes the filter language lists with --filter.
        filtering = [k for k in kinds if kind_entry(k).list_filter]
        if not filtering:
            takers = " or ".join(k for k in KINDS if kind_entry(k).list_filter)
            raise typer.BadParameter(
                f"{kind_entry(kinds[0]).label} has no list filter; use --state, or --kind "
                f"{takers}", param_hint="--filter",
            )
        kinds = filtering
    wanted: JobState | None = None
    if state:
        wanted = JobState.__members__.get(state.upper().removeprefix("JOB_STATE_"))
        if wanted is None:
            known = ", ".join(s.value for s in JobState if s is not JobState.UNSPECIFIED)
            raise typer.BadParameter(f"{state!r} is not a state; use one of {known}", param_hint="--state")
    mode = parse_transport(transport)
    use_emulator(emulator)
    target: Target | None = None

    async def collect_kind(listed_kind: str) -> list[JobStatus]:
        """Up to `limit` of one kind's jobs, narrowed by the service where its list filter
        can say so, and here where it cannot."""
        entry = kind_entry(listed_kind)
        clauses = [f"({filter_text})"] if filter_text else []
        state_clause = entry.state_list_filter(wanted) if wanted is not None else None
        if state_clause is not None:
            clauses.append(state_clause)
        check_state = wanted is not None and state_clause is None
        found: list[JobStatus] = []
        client: Any = job_client(listed_kind, project, region, mode, target)  # each kind lists
        async with client:
            listing = (client.list(region=region, filter=" AND ".join(clauses) or None)
                       if entry.list_filter else client.list(region=region))
            async for item in listing:
                if check_state and item.state is not wanted:
                    continue
                found.append(item)
                if len(found) >= limit:
                    break
        return found

    async def collect() -> list[JobStatus]:
        nonlocal target
        target = await announced_target(kinds[0] if len(kinds) == 1 else None, project, region)
        parts = await asyncio.gather(
            *(collect_kind(k) for k in kinds),
            return_exceptions=True,
        )
        merged: list[JobStatus] = []
        for listed_kind, part in zip(kinds, parts, strict=True):
            if isinstance(part, BaseException):
                skip_unserved_kind(part, listed_kind, asked_for=kind is not None,
                                   what="listed")
                continue
            merged.extend(part)
        merged.sort(key=lambda s: s.create_time.timestamp() if s.create_time else 0.0, reverse=True)
        return merged[:limit]

    statuses = asyncio.run(collect())
    if as_json:
        console.print_json(statuses_to_json(statuses))
    else:
        print_job_table(console, statuses)


def cancel(
    name: NameArgument,
    project: ProjectOption = None,
    region: RegionOption = None,
    kind: KindOption = None,
    wait: Annotated[bool, typer.Option(help="Wait until the job has stopped.")] = True,
    transport: TransportOption = "grpc",
    emulator: EmulatorOption = False,
) -> None:
    """Ask the service to cancel a job or execution (and by default wait until it has stopped).

    A job that has already ended is left as it is, with a note, and the exit code is 0, for
    both kinds (Vertex refuses such a cancel, Cloud Run accepts it).
    """
    from gcpjobs.cli.render import print_result
    from gcpjobs.errors import ApiError

    use_emulator(emulator)

    def ended(status: JobStatus) -> int:
        err_console.print(f"{status.name} already ended ({status.state.value}); nothing to "
                          "cancel", highlight=False, soft_wrap=True)
        return 0

    async def do_cancel() -> int:
        client, resource = await locate(name, parse_kind(kind), project, region, parse_transport(transport))
        async with client:
            current = await client.get(resource)
            if current.is_terminal:
                return ended(current)
            try:
                await client.cancel(resource)
            except ApiError as error:
                # It ended between the get and the cancel (Vertex: FAILED_PRECONDITION).
                after = await client.get(resource)
                if error.code != "FAILED_PRECONDITION" or not after.is_terminal:
                    raise
                return ended(after)
            err_console.print(f"cancel requested: {resource}", highlight=False, soft_wrap=True)
            if not wait:
                return 0
            result = await client.wait(resource)
            print_result(console, result)
            return 0

    raise typer.Exit(asyncio.run(do_cancel()))


HISTORY_COLUMNS = ("CREATED", "KIND", "STATE", "ENDED", "NAME", "TARGET")


def history(
    limit: Annotated[int, typer.Option(help="Show at most this many runs.", min=1)] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of the runs, newest first.")
    ] = False,
) -> None:
    """List the runs gcpjobs submitted from this machine, newest first, from the local run
    history (kept for the last 1,000 runs; it outlives the jobs it names). Sends nothing."""
    import json
    import sqlite3

    from gcpjobs.cli.render import format_time
    from gcpjobs.history import RunHistory

    history_file = RunHistory()
    try:
        records = history_file.recent(limit)
    except sqlite3.Error as error:
        raise GcpJobsError(f"the local run history {history_file.path} cannot be read "
                           f"({error}); remove the file to start a new one") from None
    if as_json:
        console.print_json(json.dumps([record.to_json() for record in records]))
        return
    if not records:
        console.print("no runs recorded", style="dim")
        return
    rows = [(format_time(r.created_at), r.kind, r.state.value, format_time(r.ended_at), r.name,
             r.target) for r in records]
    # Plain aligned columns at whatever width they need, one line a run, in a terminal too:
    # the resource name is what a user copies, so it is never cut.
    widths = [max(len(row[i]) for row in [HISTORY_COLUMNS, *rows])
              for i in range(len(HISTORY_COLUMNS))]
    for row in [HISTORY_COLUMNS, *rows]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        console.out(line.rstrip(), highlight=False)
