"""Which job a name given to a command means, where requests go, and the client for it.

A name given to `status`, `cancel`, `logs` or `step result` decides the kind where it can
(`.../customJobs/ID` or a number: Vertex; `.../executions/E`: Cloud Run); a bare name is tried
as a Cloud Run execution id, then as the name the user gave the job: a Vertex display name
with or without the submission suffix gcpjobs adds, a kept Cloud Run job (its newest
execution) or a Cloud Run job of one submission. Several matches are listed, one line each,
and the command fails. A job the service no longer has is looked up in the local run history
(`recall`).

Shared by the job, logs, attach and step commands (so that none of them imports another);
the clients are imported inside the functions, once a request is about to be sent.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gcpjobs.cli.console import announce_target, err_console
from gcpjobs.cli.options import Transport
from gcpjobs.clients.kinds import KINDS
from gcpjobs.errors import GcpJobsError

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient
    from gcpjobs.clients.retry import RetryPolicy
    from gcpjobs.clients.target import Target
    from gcpjobs.history import RunRecord
    from gcpjobs.results import JobStatus


async def announced_target(kind: str | None, project: str | None, region: str | None) -> Target:
    """Where this command's requests go (may start the embedded emulator), said on stderr."""
    from gcpjobs.clients.target import resolve_target

    target = await asyncio.to_thread(resolve_target, project=project)
    announce_target(target, kind, region or "us-central1")
    return target


def service_label(kind: str) -> str:
    """The service a kind runs on, as users read it ("Cloud Run")."""
    from gcpjobs.kinds import UnknownKindError, kind_entry

    try:
        return kind_entry(kind).label
    except UnknownKindError:  # a record from a gcpjobs that knew more kinds
        return kind


def cli_retry_policy() -> RetryPolicy:
    """Retries for a person at a terminal: a service that stops answering (the emulator
    stopped, the network gone) is reported within 10 s, not after the library's two minutes
    of silent backoff. A create still never makes a second job: before each re-send it looks
    for the first by its submission label, and gives up rather than send blind."""
    from gcpjobs.clients.retry import RetryPolicy

    return RetryPolicy(initial=0.5, maximum=2.0, deadline=6.0, call_timeout=30.0)


def job_client(
    kind: str, project: str | None, region: str | None, transport: Transport,
    target: Target | None = None,
) -> JobClient:
    from gcpjobs.clients.kinds import client_for_kind

    return client_for_kind(kind, project=project, region=region or "us-central1",
                           transport=transport, target=target, retry=cli_retry_policy())


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


async def locate(
    name: str, kind: str | None, project: str | None, region: str | None, transport: Transport
) -> tuple[JobClient, str]:
    """The client for the job `name` means, and its full resource name (see the module)."""
    from gcpjobs.clients.kinds import kind_of_name
    from gcpjobs.errors import ApiError, GcpJobsError
    from gcpjobs.kinds import kind_entry

    told = kind or kind_of_name(name)
    target = await announced_target(told, project, region)
    if told is not None and (name.startswith("projects/") or name.isdigit()):
        client = job_client(told, project, region, transport, target)
        return client, client.resource_name(name, region)
    kinds = [told] if told else list(KINDS)
    for run_kind in (k for k in kinds if kind_entry(k).executions):
        runs = job_client(run_kind, project, region, transport, target)
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
    matches = await _named(name, kinds, project, region, transport, target,
                           asked_for=told is not None)
    if len(matches) == 1:
        found = matches[0]
        return job_client(found.kind, project, region, transport, target), found.name
    if not matches:
        raise NoSuchJobError(
            f"no job or execution is named {name!r} in this region; give its id or "
            "full resource name (`gcpjobs list` shows them, `gcpjobs history` the runs made "
            "from here)"
        )
    raise GcpJobsError(_ambiguous(name, matches))


class NoSuchJobError(GcpJobsError):
    """No job or execution answers to the name given (`locate`)."""


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
    # A bare name is looked up in the region the service was asked about, as `locate` does.
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
    service = service_label(record.kind)
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
    from gcpjobs.kinds import given_name_of
    from gcpjobs.specs.labels import SUBMISSION_LABEL

    given = given_name_of(status.kind, status.display_name, status.name)
    if given == name:
        return True
    base, dash, suffix = given.rpartition("-")
    submission = status.labels.get(SUBMISSION_LABEL, "")
    return bool(dash and suffix) and base == name and submission.startswith(suffix)


async def _named(
    name: str, kinds: list[str], project: str | None, region: str | None,
    transport: Transport, target: Target, *, asked_for: bool,
) -> list[JobStatus]:
    """The jobs (Vertex) and executions (Cloud Run) submitted under `name`, newest first. A
    kept Cloud Run job counts once, as its newest execution."""
    from gcpjobs.errors import GcpJobsError
    from gcpjobs.kinds import kind_entry

    matches: list[JobStatus] = []
    for kind in kinds:
        entry = kind_entry(kind)
        wanted = entry.name_list_filter(name)
        client: Any = job_client(kind, project, region, transport, target)  # each kind lists
        try:
            async with client:
                listing = (client.list(region=region) if wanted is None
                           else client.list(region=region, filter=wanted))
                kept_seen = False
                async for status in listing:
                    if not answers_to(status, name):
                        continue
                    if entry.executions:
                        kept = entry.given_name(status.display_name, status.name) == name
                        if kept and kept_seen:
                            continue  # an older execution of the kept job
                        kept_seen = kept_seen or kept
                    matches.append(status)
        except GcpJobsError as error:
            skip_unserved_kind(error, kind, asked_for=asked_for, what="looked at")
    matches.sort(key=lambda s: s.create_time.timestamp() if s.create_time else 0.0,
                 reverse=True)
    return matches
