"""Vertex and Cloud Run clients whose watcher cycles the tests can hold, and count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from datetime import datetime

from gcpjobs.clients.cloudrun import AsyncCloudRunClient
from gcpjobs.clients.vertex import AsyncVertexClient
from gcpjobs.results import JobStatus
from gcpjobs.watch.ratelimit import RateLimit
from tests.waiting import wait_for_async


class GatedClient(AsyncVertexClient):
    """Counts the watcher's calls and records what it was told, and holds each `updates()`
    (the incremental listing) until `gate` is open."""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.gate.set()
        self.updates_done = 0
        self.listed: list[set[str]] = []  # the names each updates() reported
        self.checked: list[str] = []  # names asked of statuses()

    async def updates(
        self, names: Collection[str], since: datetime, *, rate_limit: RateLimit | None = None
    ) -> dict[str, JobStatus] | None:
        await self.gate.wait()
        found = await super().updates(names, since, rate_limit=rate_limit)
        self.listed.append(set(found or {}))
        self.updates_done += 1
        return found

    async def statuses(
        self,
        names: Collection[str],
        *,
        rate_limit: RateLimit | None = None,
        on_status: Callable[[str, JobStatus], None] | None = None,
    ) -> dict[str, JobStatus]:
        self.checked.extend(names)
        return await super().statuses(names, rate_limit=rate_limit, on_status=on_status)

    async def cycles(self, more: int) -> None:
        """Wait until `more` incremental cycles have finished from now."""
        goal = self.updates_done + more

        async def done() -> bool:
            return self.updates_done >= goal

        await wait_for_async(done, timeout=10, message=f"{more} more watcher cycles")


class GatedCloudRunClient(AsyncCloudRunClient):
    """Holds each `statuses()` (every cycle of a Cloud Run poll) until `gate` is open."""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.gate.set()
        self.polls_done = 0

    async def statuses(
        self,
        names: Collection[str],
        *,
        rate_limit: RateLimit | None = None,
        on_status: Callable[[str, JobStatus], None] | None = None,
    ) -> dict[str, JobStatus]:
        await self.gate.wait()
        found = await super().statuses(names, rate_limit=rate_limit, on_status=on_status)
        self.polls_done += 1
        return found
