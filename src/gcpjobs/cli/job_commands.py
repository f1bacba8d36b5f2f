"""`gcpjobs run|preview|status|list|cancel`: the job commands, for both kinds of job.

A job file's `kind` decides which service runs it. A name given to `status` or `cancel`
decides it where it can (`.../customJobs/ID` or a number: Vertex; `.../executions/E`: Cloud
Run); a bare name is tried as a Cloud Run execution id, then as the name the user gave the
job: a Vertex display name with or without the submission suffix gcpjobs adds, a kept Cloud
Run job (its newest execution) or a Cloud Run job of one submission. Several matches are
listed, one line each, and the command fails.

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
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from gcpjobs.cli.console import announce_target, console, err_console
from gcpjobs.clients.kinds import KINDS
from gcpjobs.errors import GcpJobsError

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient
    from gcpjobs.clients.retry import RetryPolicy
    from gcpjobs.clients.target import Target
    from gcpjobs.history import RunRecord
    from gcpjobs.results import JobStatus
    from gcpjobs.specs.jobfile import JobSpec

Transport = Literal["grpc", "rest"]

ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="Google Cloud project (default: the job file's, then the environment's; "
        "with none configured, the local emulator).",
    ),
]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="Region, e.g. us-central1 (default: us-central1).")
]
TransportOption = Annotated[
    str, typer.Option("--transport", help="Wire protocol to the API: grpc or rest.")
]
KindOption = Annotated[
    str | None,
    typer.Option("--kind", help="vertex or cloud-run (default: told by the name)."),
]
EmulatorOption = Annotated[
    bool,
    typer.Option(
        "--emulator",
        help="Use the local emulator even if a Google project is configured "
        "(same as GCPJOBS_TARGET=emulator).",
    ),
]


def use_emulator(forced: bool) -> None:
    """`--emulator`: every client this process makes resolves to the emulator (the variable
    is what `resolve_target` reads, so remote steps and log readers follow it too)."""
    import os

    from gcpjobs.clients.target import TARGET_ENV, forced_target_kind

    if forced:
        os.environ[TARGET_ENV] = "emulator"
    forced_target_kind()  # a bad GCPJOBS_TARGET is one line before anything else happens


async def announced_target(kind: str | None, project: str | None, region: str | None) -> Target:
    """Where this command's requests go (may start the embedded emulator), said on stderr."""
    from gcpjobs.clients.target import resolve_target

    target = await asyncio.to_thread(resolve_target, project=project)
    announce_target(target, kind, region or "us-central1")
    return target


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(preview)
    app.command()(status)
    app.command(name="list")(list_jobs)
    app.command()(cancel)
    app.command(name="history")(history)


def _transport(value: str) -> Transport:
    if value not in ("grpc", "rest"):
        raise typer.BadParameter(f"{value!r} is not a transport; use grpc or rest", param_hint="--transport")
    return value  # type: ignore[return-value]


def _kind(value: str | None) -> str | None:
    """The registry's name of the kind `--kind` gives (None: not given)."""
    from gcpjobs.kinds import UnknownKindError, kind_entry, known_kinds

    if value is None:
        return None
    try:
        return kind_entry(value).name
    except UnknownKindError:
        raise typer.BadParameter(f"{value!r} is not a kind; use {' or '.join(known_kinds())}",
                                 param_hint="--kind") from None


def _service(kind: str) -> str:
    """The service a kind runs on, as users read it ("Cloud Run")."""
    from gcpjobs.kinds import UnknownKindError, kind_entry

    try:
        return kind_entry(kind).label
    except UnknownKindError:  # a record from a gcpjobs that knew more kinds
        return kind


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


def cli_retry_policy() -> RetryPolicy:
    """Retries for a person at a terminal: a service that stops answering (the emulator
    stopped, the network gone) is reported within 10 s, not after the library's two minutes
    of silent backoff. A create still never makes a second job: before each re-send it looks
    for the first by its submission label, and gives up rather than send blind."""
    from gcpjobs.clients.retry import RetryPolicy

    return RetryPolicy(initial=0.5, maximum=2.0, deadline=6.0, call_timeout=30.0)


def _client(
    kind: str, project: str | None, region: str | None, transport: Transport,
    target: Target | None = None,
) -> JobClient:
    from gcpjobs.clients.kinds import client_for_kind

    return client_for_kind(kind, project=project, region=region or "us-central1",
                           transport=transport, target=target, retry=cli_retry_policy())


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
    client = _client(job.kind, job.project, job.region, _transport(transport))
    code = asyncio.run(follow_job(client, job, detach=detach))
    raise typer.Exit(code)


# What a project (or an older emulator) that does not serve one kind's API answers.
_SERVICE_MISSING = frozenset({"PERMISSION_DENIED", "FAILED_PRECONDITION", "UNIMPLEMENTED"})
_NOT_AN_EXECUTION = frozenset(
    {"NOT_FOUND", "PERMISSION_DENIED", "FAILED_PRECONDITION", "INVALID_ARGUMENT"}
)


def skip_unserved_kind(error: BaseException, kind: str, *, asked_for: bool, what: str) -> None:
    """Go on without `kind` when its API is not served in the project (a command that covers
    both kinds by default must not fail for a project that uses one), with a notice; raise
    `error` when the user asked for that kind or it failed for another reason."""
    from gcpjobs.errors import ApiError

    if asked_for or not (isinstance(error, ApiError) and error.code in _SERVICE_MISSING):
        raise error
    err_console.print(f"{kind} jobs not {what}: {error}", style="yellow", highlight=False,
                      soft_wrap=True)


async def _locate(
    name: str, kind: str | None, project: str | None, region: str | None, transport: Transport
) -> tuple[JobClient, str]:
    """The client for the job `name` means, and its full resource name (see the module)."""
    from gcpjobs.clients.kinds import kind_of_name
    from gcpjobs.errors import ApiError, GcpJobsError

    told = kind or kind_of_name(name)
    target = await announced_target(told, project, region)
    if told is not None and (name.startswith("projects/") or name.isdigit()):
        client = _client(told, project, region, transport, target)
        return client, client.resource_name(name, region)
    if told in (None, "cloud-run"):
        runs = _client("cloud-run", project, region, transport, target)
        try:
            resource = runs.resource_name(name, region)
        except GcpJobsError:
            resource = None  # not shaped like an execution id
        if resource is not None:
            try:
                await runs.get(resource)
                return runs, resource
            except ApiError as error:
                # Not an execution here (or Cloud Run is not enabled in the project): on to
                # the names users gave, whose own error is the one to show if that fails too.
                if error.code not in _NOT_AN_EXECUTION:
                    raise
        await runs.close()
    kinds = [told] if told else list(KINDS)
    matches = await _named(name, kinds, project, region, transport, target,
                           asked_for=told is not None)
    if len(matches) == 1:
        found = matches[0]
        return _client(found.kind, project, region, transport, target), found.name
    if not matches:
        raise NoSuchJobError(
            f"no job or execution is named {name!r} in this region; give its id or "
            "full resource name (`gcpjobs list` shows them, `gcpjobs history` the runs made "
            "from here)"
        )
    raise GcpJobsError(_ambiguous(name, matches))


class NoSuchJobError(GcpJobsError):
    """No job or execution answers to the name given (`_locate`)."""


def _ambiguous(name: str, matches: list[JobStatus]) -> str:
    """The error for a name several jobs answer to: a line, then one line per job."""
    from gcpjobs.cli.render import format_time

    lines = [f"{len(matches)} jobs are named {name!r}; give one of these ids:"]
    lines += [f"  {m.job_id}  {m.kind}  {m.state.value}  created {format_time(m.create_time)}"
              for m in matches]
    return "\n".join(lines)


# ------------------------------------------------------------------------ the run history


def is_gone(error: BaseException) -> bool:
    """Whether `error` says the service has no such job (so the run history may know it)."""
    from gcpjobs.errors import JobNotFoundError

    return isinstance(error, (NoSuchJobError, JobNotFoundError))


def recall(
    name: str, kind: str | None, project: str | None, region: str | None, error: BaseException,
) -> RunRecord:
    """The run `name` means in the local run history, for a name the service no longer
    knows; it says on stderr that the answer is the history's. Raises `error` (the
    service's answer) when the history does not know it either."""
    from gcpjobs.cli.render import format_time
    from gcpjobs.clients.target import resolve_target
    from gcpjobs.history import RunHistory, target_key

    target = resolve_target(project=project)
    # A bare name is looked up in the region the service was asked about, as `_locate` does.
    where = None if name.strip().startswith("projects/") else (region or "us-central1")
    try:
        records = RunHistory().lookup(name, target=target_key(target), region=where)
    except Exception as failure:  # an unreadable history is no answer; the service's stands
        err_console.print(f"the local run history could not be read: {failure}",
                          style="yellow", highlight=False, soft_wrap=True)
        raise error from None
    records = [record for record in records if kind is None or record.kind == kind]
    if not records:
        raise error
    if len(records) > 1:
        lines = [f"{len(records)} runs in the local run history are named {name!r}; give one "
                 "of these ids:"]
        lines += [f"  {r.job_id}  {r.kind}  {r.state.value}  created {format_time(r.created_at)}"
                  for r in records]
        raise GcpJobsError("\n".join(lines)) from None
    record = records[0]
    service = _service(record.kind)
    ended = (f"its end was recorded at {format_time(record.ended_at)}" if record.ended_at
             else "it had not ended when last seen from here")
    err_console.print(
        f"from the local run history: {record.name} no longer exists in {service} (deleted); "
        f"{ended}", style="yellow", highlight=False, soft_wrap=True,
    )
    return record


def remember_end(target: Target, status: JobStatus) -> None:
    """Tell the run history how a run it holds ended, as seen live (best effort)."""
    from gcpjobs import history

    history.record_status(target=history.target_key(target), status=status)


def answers_to(status: JobStatus, name: str) -> bool:
    """Whether a job was submitted under the name `name`: its display name (Vertex) or job id
    (Cloud Run) is `name`, or `name` plus the suffix gcpjobs adds from the submission id."""
    from gcpjobs.specs.labels import SUBMISSION_LABEL

    given = status.display_name if status.kind == "vertex" else _run_job_id(status.name)
    if given == name:
        return True
    base, dash, suffix = given.rpartition("-")
    submission = status.labels.get(SUBMISSION_LABEL, "")
    return bool(dash and suffix) and base == name and submission.startswith(suffix)


def _run_job_id(execution: str) -> str:
    """`projects/P/locations/R/jobs/JOB/executions/E` -> `JOB`."""
    parts = execution.split("/")
    return parts[5] if len(parts) > 5 else execution


async def _named(
    name: str, kinds: list[str], project: str | None, region: str | None,
    transport: Transport, target: Target, *, asked_for: bool,
) -> list[JobStatus]:
    """The jobs (Vertex) and executions (Cloud Run) submitted under `name`, newest first. A
    kept Cloud Run job counts once, as its newest execution."""
    from gcpjobs.clients.cloudrun import AsyncCloudRunClient
    from gcpjobs.clients.vertex import AsyncVertexClient
    from gcpjobs.errors import GcpJobsError

    matches: list[JobStatus] = []
    for kind in kinds:
        client = _client(kind, project, region, transport, target)
        try:
            async with client:
                if isinstance(client, AsyncVertexClient):
                    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
                    # The exact name, or the name and a suffix; the suffix is checked below.
                    wanted = f'display_name="{quoted}" OR display_name:"{quoted}-*"'
                    async for status in client.list(region=region, filter=wanted):
                        if answers_to(status, name):
                            matches.append(status)
                else:
                    assert isinstance(client, AsyncCloudRunClient)
                    kept_seen = False
                    async for status in client.list(region=region):
                        if not answers_to(status, name):
                            continue
                        kept = _run_job_id(status.name) == name
                        if kept and kept_seen:
                            continue  # an older execution of the kept job
                        kept_seen = kept_seen or kept
                        matches.append(status)
        except GcpJobsError as error:
            skip_unserved_kind(error, kind, asked_for=asked_for, what="looked at")
    matches.sort(key=lambda s: s.create_time.timestamp() if s.create_time else 0.0,
                 reverse=True)
    return matches


NameArgument = Annotated[
    str,
    typer.Argument(
        help="A Vertex job id, display name or resource name; or a Cloud Run execution id or "
        "resource name."
    ),
]


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
    chosen = _kind(kind)

    async def fetch() -> tuple[JobStatus, bool]:
        try:
            client, resource = await _locate(name, chosen, project, region,
                                             _transport(transport))
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
    from gcpjobs.clients.cloudrun import AsyncCloudRunClient
    from gcpjobs.clients.vertex import AsyncVertexClient
    from gcpjobs.states import JobState

    chosen = _kind(kind)
    kinds: list[str] = [chosen] if chosen else list(KINDS)
    if filter_text and kinds == ["cloud-run"]:
        raise typer.BadParameter(
            "Cloud Run has no list filter; use --state, or --kind vertex", param_hint="--filter"
        )
    if filter_text:
        kinds = ["vertex"]  # only Vertex understands the filter language
    clauses = [f"({filter_text})"] if filter_text else []
    wanted: JobState | None = None
    if state:
        wanted = JobState.__members__.get(state.upper().removeprefix("JOB_STATE_"))
        if wanted is None:
            known = ", ".join(s.value for s in JobState if s is not JobState.UNSPECIFIED)
            raise typer.BadParameter(f"{state!r} is not a state; use one of {known}", param_hint="--state")
        clauses.append(f'state="JOB_STATE_{wanted.value}"')
    mode = _transport(transport)
    use_emulator(emulator)
    target: Target | None = None

    async def collect_vertex() -> list[JobStatus]:
        found: list[JobStatus] = []
        async with AsyncVertexClient(project=project, region=region or "us-central1",
                                     transport=mode, target=target,
                                     retry=cli_retry_policy()) as client:
            async for item in client.list(region=region, filter=" AND ".join(clauses) or None):
                found.append(item)
                if len(found) >= limit:
                    break
        return found

    async def collect_cloud_run() -> list[JobStatus]:
        # Cloud Run lists have no filter: the state is checked here.
        found: list[JobStatus] = []
        async with AsyncCloudRunClient(project=project, region=region or "us-central1",
                                       transport=mode, target=target,
                                       retry=cli_retry_policy()) as client:
            async for item in client.list(region=region):
                if wanted is None or item.state is wanted:
                    found.append(item)
                    if len(found) >= limit:
                        break
        return found

    async def collect() -> list[JobStatus]:
        nonlocal target
        target = await announced_target(kinds[0] if len(kinds) == 1 else None, project, region)
        parts = await asyncio.gather(
            *(collect_vertex() if k == "vertex" else collect_cloud_run() for k in kinds),
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
        client, resource = await _locate(name, _kind(kind), project, region, _transport(transport))
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
