"""Read a job's log lines through the official Cloud Logging GAPIC client (GCP or emulator).

`AsyncLogReader(target).entries(name)` lists what a Vertex custom job or a Cloud Run execution
has logged so far; `follow(name, until=...)` polls ListLogEntries with a cursor (the reference
notes that TailLogEntries is unreliable from Python) and yields each line once.

The cursor is exact: it keeps the newest timestamp seen and the insert ids seen within
`overlap` seconds before it, and each poll asks for `timestamp >= newest - overlap`, skipping
ids it has seen. So a line is never yielded twice, and a line that lands late (a slower pipe,
another replica) within `overlap` is not skipped; pass the same `LogCursor` to a new `follow`
after a reconnect to go on where the last one stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from gcpjobs.clients.target import Target, resolve_target
from gcpjobs.errors import GcpJobsError

ERROR_RANK = 500
PAGE_SIZE = 1000


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    source: str  # "workerpool0-0", "task-0", "task-1/attempt-1", "service"
    text: str
    stderr: bool  # severity ERROR or above (what the job wrote to stderr)
    insert_id: str


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

    def start(self) -> datetime | None:
        if self.newest is None:
            return None
        horizon = self.newest - timedelta(seconds=self.overlap)
        self.seen = {key: when for key, when in self.seen.items() if when >= horizon}
        return horizon


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log_filter(job_name: str) -> tuple[str, str]:
    """The project and the Logging filter for a job's resource name."""
    parts = job_name.strip().split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[4] == "customJobs":
        return parts[1], f'resource.type="ml_job" resource.labels.job_id="{parts[5]}"'
    if len(parts) == 8 and parts[0] == "projects" and parts[4] == "jobs" and parts[6] == "executions":
        return parts[1], (
            f'resource.type="cloud_run_job" resource.labels.job_name="{parts[5]}" '
            f'labels."run.googleapis.com/execution_name"="{parts[7]}" '
            f'resource.labels.location="{parts[3]}"'
        )
    raise GcpJobsError(
        f"{job_name!r} is not a job's resource name; give projects/P/locations/L/customJobs/ID "
        "or projects/P/locations/L/jobs/J/executions/E"
    )


def _line(entry: Any) -> LogLine:
    labels = entry.labels
    if entry.resource.type == "ml_job":
        source = entry.resource.labels.get("task_name", "service")
    elif "run.googleapis.com/task_index" in labels:
        source = f"task-{labels['run.googleapis.com/task_index']}"
        attempt = labels.get("run.googleapis.com/task_attempt", "0")
        if attempt != "0":
            source += f"/attempt-{attempt}"
    else:
        source = "service"
    text = entry.text_payload or (str(dict(entry.json_payload)) if "json_payload" in entry else "")
    return LogLine(entry.timestamp, source, text, int(entry.severity) >= ERROR_RANK, entry.insert_id)


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
        lines = await self._unseen(job_name, since, cursor)
        if cursor is not None:
            for line in lines:
                cursor.take(line)
        return lines

    async def _unseen(self, job_name: str, since: datetime | None, cursor: LogCursor | None) -> list[LogLine]:
        project, where = log_filter(job_name)
        start = cursor.start() if cursor is not None else None
        if since is not None and (start is None or since > start):
            start = since
        if start is not None:
            where += f' timestamp>="{rfc3339(start)}"'
        from google.api_core import exceptions

        api = await self._api()
        request = {"resource_names": [f"projects/{project}"], "filter": where,
                   "order_by": "timestamp asc", "page_size": PAGE_SIZE}
        lines: list[LogLine] = []
        try:
            pager = await api.list_log_entries(request=request)
            async for entry in pager:
                line = _line(entry)
                if cursor is None or line.insert_id not in cursor.seen:
                    lines.append(line)
        except exceptions.GoogleAPICallError as error:
            raise GcpJobsError(f"cannot read the logs of {job_name}: {error.message}") from None
        return lines

    async def follow(
        self, job_name: str, *, since: datetime | None = None, cursor: LogCursor | None = None,
        until: Callable[[], bool] | None = None, interval: float = 0.3,
    ) -> AsyncIterator[LogLine]:
        """Lines as they are logged, each once; ends after the poll that follows `until()`
        turning true (so the last lines are not lost), or never without `until`."""
        cursor = cursor if cursor is not None else LogCursor()
        while True:
            finished = until is not None and until()
            for line in await self._unseen(job_name, since, cursor):
                cursor.take(line)  # as it is handed out: a consumer that stops loses nothing
                yield line
            if finished:
                return
            await asyncio.sleep(interval)
