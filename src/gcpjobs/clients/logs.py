"""Read jobs' log lines through the official Cloud Logging GAPIC client (GCP or emulator).

`AsyncLogReader(target).entries(name)` lists what a Vertex custom job or a Cloud Run execution
has logged so far; `read(project, filter)` runs one query (every page) for any number of jobs
at once, each entry marked with the job it belongs to (`LogSubject.key`). Following jobs as
they log is `gcpjobs.watch.logs.LogWatcher`, which polls with one such query for all the jobs
of a project (the reference notes that TailLogEntries is unreliable from Python).

A `LogCursor` is exact: it keeps the newest timestamp seen and the insert ids seen within
`overlap` seconds before it, and each poll asks for `timestamp >= newest - overlap`, skipping
ids it has seen. So a line is never yielded twice, and a line that lands late (a slower pipe,
another replica) within `overlap` is not skipped; keep the cursor (`to_json`) to go on where a
reader stopped after a reconnect or a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from gcpjobs.clients.target import Target, resolve_target
from gcpjobs.core.ratelimit import RateLimit, acquire
from gcpjobs.errors import GcpJobsError

if TYPE_CHECKING:
    from gcpjobs.clients.retry import RetryPolicy

ERROR_RANK = 500
PAGE_SIZE = 1000
# Cloud Logging allows 60 read requests a minute per project: poll GCP gently (one query a
# poll covers every job a process follows in that project), and keep polling a little after
# a job ended, as lines reach Logging a few seconds late there.
EMULATOR_POLL_SECONDS = 0.3
GCP_POLL_SECONDS = 5.0
GCP_LATE_LINES_SECONDS = 10.0


def poll_interval(target: Target) -> float:
    """Seconds between two log polls of a project on `target`."""
    return EMULATOR_POLL_SECONDS if target.is_emulator else GCP_POLL_SECONDS


def late_lines_seconds(target: Target) -> float:
    """How late a line can reach Logging on `target` after its timestamp."""
    return 0.0 if target.is_emulator else GCP_LATE_LINES_SECONDS


def ended_since(done: Callable[[], bool], target: Target) -> Callable[[], bool]:
    """`until` for following a job's lines: true once `done()` (the job has ended) has been
    true for as long as lines can still arrive late on `target`."""
    grace = late_lines_seconds(target)
    first_done: list[float] = []

    def until() -> bool:
        if not done():
            return False
        if not first_done:
            first_done.append(time.monotonic())
        return time.monotonic() - first_done[0] >= grace

    return until


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    source: str  # "workerpool0-0", "task-0", "task-1/attempt-1", "service"
    text: str
    stderr: bool  # severity ERROR or above (what the job wrote to stderr)
    insert_id: str
    # Written by the service about the job, not by the job: Cloud Run's system log
    # (`run.googleapis.com/varlog/system`), Vertex's service log (`ml.googleapis.com/ID`),
    # the emulator's notes. The same note for each task need only be shown once.
    system: bool = False


@dataclass
class LogCursor:
    """Where a reader stopped: the newest time seen, and the ids seen near it."""

    overlap: float = 2.0
    newest: datetime | None = None
    seen: dict[str, datetime] = field(default_factory=dict)

    def take(self, line: LogLine) -> bool:
        """Record `line`; False if it was seen before."""
        if line.insert_id in self.seen:
            return False
        self.seen[line.insert_id] = line.timestamp
        if self.newest is None or line.timestamp > self.newest:
            self.newest = line.timestamp
        return True

    def to_json(self) -> dict[str, Any]:
        """The cursor as JSON data, to go on after a restart (see `from_json`)."""
        return {"overlap": self.overlap,
                "newest": None if self.newest is None else self.newest.isoformat(),
                "seen": {key: when.isoformat() for key, when in self.seen.items()}}

    @classmethod
    def from_json(cls, data: Any) -> LogCursor:
        """A cursor saved by `to_json`; ValueError for anything else."""
        try:
            newest = data["newest"]
            return cls(overlap=float(data["overlap"]),
                       newest=None if newest is None else datetime.fromisoformat(newest),
                       seen={str(key): datetime.fromisoformat(when)
                             for key, when in dict(data["seen"]).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a saved log cursor ({type(error).__name__})") from None

    def start(self, *, at_least: float = 0.0) -> datetime | None:
        """Where the next read starts (None: at the beginning), `overlap` seconds (or
        `at_least`, if more) before the newest line; forgets ids from before it."""
        if self.newest is None:
            return None
        horizon = self.newest - timedelta(seconds=max(self.overlap, at_least))
        self.seen = {key: when for key, when in self.seen.items() if when >= horizon}
        return horizon


def read_start(cursor: LogCursor | None, since: datetime | None, *,
               at_least: float = 0.0) -> datetime | None:
    """Where a read of a job's lines starts: the later of `since` and where `cursor` goes on
    (see `LogCursor.start`); None: at the job's first line."""
    start = cursor.start(at_least=at_least) if cursor is not None else None
    if since is not None and (start is None or since > start):
        start = since
    return start


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


LogKey = tuple[str, ...]  # which job an entry belongs to, as `LogSubject.key` and `entry_key`


@dataclass(frozen=True)
class LogSubject:
    """A job as Cloud Logging knows it: the project its entries are in, the filter that
    selects them, and the key its entries carry."""

    name: str
    project: str
    where: str
    key: LogKey

    def since(self, start: datetime | None) -> str:
        """The filter for the job's entries from `start` on (all of them for None)."""
        return self.where if start is None else f'{self.where} timestamp>="{rfc3339(start)}"'


def log_subject(job_name: str) -> LogSubject:
    """The `LogSubject` of a job's resource name; GcpJobsError for anything else."""
    parts = job_name.strip().split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[4] == "customJobs":
        return LogSubject(job_name, parts[1],
                          f'resource.type="ml_job" resource.labels.job_id="{parts[5]}"',
                          ("ml_job", parts[5]))
    if len(parts) == 8 and parts[0] == "projects" and parts[4] == "jobs" and parts[6] == "executions":
        return LogSubject(job_name, parts[1], (
            f'resource.type="cloud_run_job" resource.labels.job_name="{parts[5]}" '
            f'labels."run.googleapis.com/execution_name"="{parts[7]}" '
            f'resource.labels.location="{parts[3]}"'
        ), ("cloud_run_job", parts[3], parts[5], parts[7]))
    raise GcpJobsError(
        f"{job_name!r} is not a job's resource name; give projects/P/locations/L/customJobs/ID "
        "or projects/P/locations/L/jobs/J/executions/E"
    )


def entry_key(entry: Any) -> LogKey:
    """The `LogSubject.key` of the job a LogEntry belongs to (a proto-plus or raw entry)."""
    return _key_and_line(_raw(entry))[0]


def _raw(entry: Any) -> Any:
    """The protobuf message under a proto-plus LogEntry: reading its fields is many times
    cheaper, which matters for a job that logs thousands of lines a second."""
    return type(entry).pb(entry) if hasattr(type(entry), "pb") else entry


_SYSTEM_LOGS = ("%2Fvarlog%2Fsystem", "/varlog/system")
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _key_and_line(entry: Any) -> tuple[LogKey, LogLine]:
    """The job's key and the `LogLine` of a raw `google.logging.v2.LogEntry`."""
    resource_labels = entry.resource.labels
    labels = entry.labels
    log_name = entry.log_name
    if entry.resource.type == "ml_job":
        job_id = resource_labels.get("job_id", "")
        key: LogKey = ("ml_job", job_id)
        source = resource_labels.get("task_name", "service")
        system = source == "service" or log_name.endswith(f"%2F{job_id}")
    else:
        key = ("cloud_run_job", resource_labels.get("location", ""),
               resource_labels.get("job_name", ""),
               labels.get("run.googleapis.com/execution_name", ""))
        if "run.googleapis.com/task_index" in labels:
            source = f"task-{labels['run.googleapis.com/task_index']}"
            attempt = labels.get("run.googleapis.com/task_attempt", "0")
            if attempt != "0":
                source += f"/attempt-{attempt}"
        else:
            source = "service"
        system = log_name.endswith(_SYSTEM_LOGS)
    payload = entry.WhichOneof("payload")
    if payload == "text_payload":
        text = entry.text_payload
    elif payload == "json_payload":
        from google.protobuf import json_format

        text = str(json_format.MessageToDict(entry.json_payload))
    else:
        text = ""
    stamp = entry.timestamp
    timestamp = _UTC_EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)
    return key, LogLine(timestamp, source, text, entry.severity >= ERROR_RANK, entry.insert_id,
                        system)


class LogReadError(GcpJobsError):
    """Cloud Logging refused or failed a read; `transient` when trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class AsyncLogReader:
    """Log lines of jobs, from where the job clients send their requests."""

    def __init__(self, target: Target | None = None, *, credentials: Any = None) -> None:
        self._target = target
        self._credentials = credentials
        self._client: Any = None

    async def __aenter__(self) -> AsyncLogReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.transport.close()

    async def _api(self) -> Any:
        if self._client is not None:
            return self._client
        target = self._target
        if target is None:
            target = self._target = await asyncio.to_thread(resolve_target)
        from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2AsyncClient

        if target.is_emulator:
            import grpc
            from google.cloud.logging_v2.services.logging_service_v2.transports import (
                LoggingServiceV2GrpcAsyncIOTransport,
            )

            assert target.grpc_address is not None
            channel = grpc.aio.insecure_channel(target.grpc_address)
            self._client = LoggingServiceV2AsyncClient(
                transport=LoggingServiceV2GrpcAsyncIOTransport(channel=channel))
        else:
            from gcpjobs.clients.connection import load_credentials, scoped

            credentials = (scoped(self._credentials) if self._credentials is not None
                           else await asyncio.to_thread(load_credentials, target.credentials_file))
            self._client = LoggingServiceV2AsyncClient(credentials=credentials)
        return self._client

    async def entries(
        self, job_name: str, *, since: datetime | None = None, cursor: LogCursor | None = None
    ) -> list[LogLine]:
        """Every line the job has logged (since `since`), oldest first; with a cursor, only the
        lines it has not seen (and it records them)."""
        subject = log_subject(job_name)
        from gcpjobs.clients.retry import RetryPolicy

        await self._api()  # resolves the target
        assert self._target is not None
        try:
            rows = await self.read(subject.project, subject.since(read_start(cursor, since)),
                                   retry=RetryPolicy.for_target(self._target))
        except LogReadError as error:
            raise GcpJobsError(f"cannot read the logs of {job_name}: {error}") from None
        lines = [line for _, line in rows]
        if cursor is not None:
            lines = [line for line in lines if cursor.take(line)]
        return lines

    async def read(
        self, project: str, where: str, *, rate_limit: RateLimit | None = None,
        retry: RetryPolicy | None = None,
    ) -> list[tuple[LogKey, LogLine]]:
        """The entries of `project` that `where` selects, oldest first, each with the key of
        its job: one ListLogEntries call a page, each page after the first taking a slot of
        `rate_limit`; the whole read is tried again on transient errors under `retry` (once
        without). Raises LogReadError."""
        from google.api_core import exceptions

        from gcpjobs.clients.retry import is_transient, server_message

        async def pages() -> list[tuple[LogKey, LogLine]]:
            api = await self._api()
            request = {"resource_names": [f"projects/{project}"], "filter": where,
                       "order_by": "timestamp asc", "page_size": PAGE_SIZE}
            rows: list[tuple[LogKey, LogLine]] = []
            pager = await api.list_log_entries(request=request, retry=None)
            async for page in pager.pages:
                rows.extend(_key_and_line(entry) for entry in type(page).pb(page).entries)
                if page.next_page_token:
                    await acquire(rate_limit)
            return rows

        try:
            if retry is None:
                return await pages()
            result: list[tuple[LogKey, LogLine]] = await retry.async_retry()(pages)()
            return result
        except exceptions.RetryError as error:
            cause: BaseException = error.cause or error
        except exceptions.GoogleAPICallError as error:
            cause = error
        raise LogReadError(f"cannot read the logs of project {project}: {server_message(cause)}",
                           transient=is_transient(cause))
