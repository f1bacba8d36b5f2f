"""`gcpjobs run|preview|status|list|cancel`: the job commands.

Each command loads what it needs inside its body: the spec models for `preview`, the Google
clients only once a request is about to be sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from gcpjobs.cli.console import console, err_console

if TYPE_CHECKING:
    from gcpjobs.clients.vertex import AsyncVertexClient
    from gcpjobs.results import JobStatus
    from gcpjobs.specs.vertex import VertexJob

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


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(preview)
    app.command()(status)
    app.command(name="list")(list_jobs)
    app.command()(cancel)


def _transport(value: str) -> Transport:
    if value not in ("grpc", "rest"):
        raise typer.BadParameter(f"{value!r} is not a transport; use grpc or rest", param_hint="--transport")
    return value  # type: ignore[return-value]


def _load(path: Path, name: str | None, project: str | None, region: str | None) -> VertexJob:
    from gcpjobs.specs.jobfile import load_job_file

    job = load_job_file(path)
    overrides = {
        key: value
        for key, value in {"name": name, "project": project, "region": region}.items()
        if value is not None
    }
    return job.with_overrides(**overrides) if overrides else job


def _client(project: str | None, region: str | None, transport: Transport) -> AsyncVertexClient:
    from gcpjobs.clients.vertex import AsyncVertexClient

    return AsyncVertexClient(project=project, region=region or "us-central1", transport=transport)


def preview(
    file: Annotated[Path, typer.Argument(help="Job file (YAML, `kind: vertex`, or a CustomJobSpec).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="yaml or json.")] = "yaml",
    name: Annotated[str | None, typer.Option(help="Override the job's name.")] = None,
    project: ProjectOption = None,
    region: RegionOption = None,
) -> None:
    """Show the exact CreateCustomJob request a file makes, secrets redacted. Sends nothing."""
    if fmt not in ("yaml", "json"):
        raise typer.BadParameter(f"{fmt!r} is not a format; use yaml or json", param_hint="--format")
    job = _load(file, name, project, region)
    console.print(job.preview(fmt=fmt), markup=False, soft_wrap=True)


def run(
    file: Annotated[Path, typer.Argument(help="Job file (YAML, `kind: vertex`, or a CustomJobSpec).")],
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Submit and return without waiting.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Override the job's name.")] = None,
    project: ProjectOption = None,
    region: RegionOption = None,
    transport: TransportOption = "grpc",
) -> None:
    """Submit a job, follow it live, and exit 0 only if it SUCCEEDED.

    Ctrl-C asks the service to cancel the job; a second Ctrl-C stops waiting and leaves it running.
    """
    from gcpjobs.cli.follow import follow_job

    job = _load(file, name, project, region)
    client = _client(job.project, job.region, _transport(transport))
    code = asyncio.run(follow_job(client, job, detach=detach))
    raise typer.Exit(code)


def _resolve_name(client: AsyncVertexClient, name: str, region: str | None) -> str:
    """A full resource name, a numeric job id, or a display name → the full resource name."""
    if name.startswith("projects/") or name.isdigit():
        return client.resource_name(name, region)
    return asyncio.run(_lookup_display_name(client, name, region))


async def _lookup_display_name(client: AsyncVertexClient, display_name: str, region: str | None) -> str:
    from gcpjobs.errors import GcpJobsError

    quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
    matches = [
        status.name
        async for status in client.list(region=region, filter=f'display_name="{quoted}"')
    ]
    await client.close()
    if not matches:
        raise GcpJobsError(
            f"no job is named {display_name!r} in this region; give its id or full resource name "
            "(`gcpjobs list` shows them)"
        )
    if len(matches) > 1:
        raise GcpJobsError(
            f"{len(matches)} jobs are named {display_name!r}; give one id: "
            + ", ".join(m.rsplit("/", 1)[-1] for m in matches[:5])
        )
    return matches[0]


def status(
    name: Annotated[str, typer.Argument(help="Job id, display name or full resource name.")],
    project: ProjectOption = None,
    region: RegionOption = None,
    transport: TransportOption = "grpc",
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show one job's state, times and error."""
    from gcpjobs.cli.render import print_status, status_to_json

    client = _client(project, region, _transport(transport))
    resource = _resolve_name(client, name, region)

    async def fetch() -> JobStatus:
        async with client:
            return await client.get(resource)

    job_status = asyncio.run(fetch())
    if as_json:
        console.print_json(status_to_json(job_status))
    else:
        print_status(console, job_status)


def list_jobs(
    project: ProjectOption = None,
    region: RegionOption = None,
    filter_text: Annotated[
        str | None,
        typer.Option("--filter", help='Vertex list filter, e.g. state="JOB_STATE_RUNNING".'),
    ] = None,
    state: Annotated[
        str | None, typer.Option(help="Only jobs in this state (RUNNING, FAILED …).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many jobs.", min=1)] = 50,
    transport: TransportOption = "grpc",
) -> None:
    """List jobs, newest first."""
    from gcpjobs.cli.render import print_job_table
    from gcpjobs.states import JobState

    clauses = [f"({filter_text})"] if filter_text else []
    if state:
        wanted = JobState.__members__.get(state.upper().removeprefix("JOB_STATE_"))
        if wanted is None:
            known = ", ".join(s.value for s in JobState if s is not JobState.UNSPECIFIED)
            raise typer.BadParameter(f"{state!r} is not a state; use one of {known}", param_hint="--state")
        clauses.append(f'state="JOB_STATE_{wanted.value}"')
    client = _client(project, region, _transport(transport))

    async def collect() -> list[JobStatus]:
        found: list[JobStatus] = []
        async with client:
            async for item in client.list(region=region, filter=" AND ".join(clauses) or None):
                found.append(item)
                if len(found) >= limit:
                    break
        return found

    print_job_table(console, asyncio.run(collect()))


def cancel(
    name: Annotated[str, typer.Argument(help="Job id, display name or full resource name.")],
    project: ProjectOption = None,
    region: RegionOption = None,
    wait: Annotated[bool, typer.Option(help="Wait until the job has stopped.")] = True,
    transport: TransportOption = "grpc",
) -> None:
    """Ask the service to cancel a job (and by default wait until it has stopped)."""
    from gcpjobs.cli.render import print_result

    client = _client(project, region, _transport(transport))
    resource = _resolve_name(client, name, region)

    async def do_cancel() -> int:
        async with client:
            await client.cancel(resource)
            err_console.print(f"cancel requested: {resource}", highlight=False)
            if not wait:
                return 0
            result = await client.wait(resource)
            print_result(console, result)
            return 0

    raise typer.Exit(asyncio.run(do_cancel()))
