"""What every async job client offers, whichever service it speaks to.

The CLI and the integrations drive Vertex custom jobs and Cloud Run executions through this
one shape; each client takes its own spec type in `create`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from gcpjobs.clients.target import Target
from gcpjobs.core.poll import OnChange, PollInterval
from gcpjobs.core.ratelimit import RateLimit
from gcpjobs.results import Container, JobResult, JobStatus


class JobClient(Protocol):
    @property
    def target(self) -> Target: ...

    def resource_name(self, name: str, region: str | None = None, /) -> str: ...

    async def create(self, job: Any, *, submission_id: str | None = None) -> JobStatus: ...

    async def get(self, name: str, /) -> JobStatus: ...

    async def container(self, name: str, /) -> Container: ...

    async def statuses(
        self,
        names: Collection[str],
        /,
        *,
        rate_limit: RateLimit | None = None,
        on_status: Callable[[str, JobStatus], None] | None = None,
    ) -> dict[str, JobStatus]:
        """The current status of each of these jobs (full resource names), with as few API
        calls as possible, each call first taking a slot of `rate_limit`; names missing from
        the result do not exist. `on_status(name, status)` is told of each as soon as its
        page or Get arrives, before the whole result is in."""
        ...

    async def updates(
        self, names: Collection[str], since: datetime, /, *, rate_limit: RateLimit | None = None
    ) -> dict[str, JobStatus] | None:
        """The status of those of `names` that changed at or after `since`, listing only what
        changed; a name missing from it has not changed (or is gone, or is not gcpjobs'), which
        `statuses()` tells. None when the service cannot list by update time."""
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
