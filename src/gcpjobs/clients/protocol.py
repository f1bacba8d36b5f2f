"""What every async job client offers, whichever service it speaks to.

The CLI and the integrations drive Vertex custom jobs and Cloud Run executions through this
one shape; each client takes its own spec type in `create`.
"""

from __future__ import annotations

from collections.abc import Collection
from types import TracebackType
from typing import Any, Protocol

from gcpjobs.clients.target import Target
from gcpjobs.results import Container, JobResult, JobStatus
from gcpjobs.watch.poll import OnChange, PollInterval


class JobClient(Protocol):
    @property
    def target(self) -> Target: ...

    def resource_name(self, name: str, region: str | None = None, /) -> str: ...

    async def create(self, job: Any, *, submission_id: str | None = None) -> JobStatus: ...

    async def get(self, name: str, /) -> JobStatus: ...

    async def container(self, name: str, /) -> Container: ...

    async def statuses(self, names: Collection[str], /) -> dict[str, JobStatus]:
        """The current status of each of these jobs (full resource names), with as few API
        calls as possible; names missing from the result do not exist."""
        ...

    def poll_schedule(self) -> PollInterval: ...

    async def cancel(self, name: str, /) -> None: ...

    async def wait(
        self,
        name: str,
        *,
        on_change: OnChange | None = None,
        timeout: float | None = None,
        known: JobStatus | None = None,
    ) -> JobResult: ...

    async def finish(self, job: Any, name: str, /) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
