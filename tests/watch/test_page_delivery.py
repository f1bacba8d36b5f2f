"""`JobWatcher` hands statuses to waiters page by page: the first page of a long Cloud Run
listing is reported before the last page is read.

ListExecutions has no filter, so a cycle over many executions is many pages, and under a
requests-per-minute budget one cycle can take minutes. Checked on a private emulator that
holds executions before their tasks start, with pages of ten, through a client whose listing
stops after its first page until the test lets it go on.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncGenerator, Callable

import pytest

import gcpjobs.clients.cloudrun as cloudrun_module
from gcpjobs.clients.cloudrun import AsyncCloudRunClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.results import JobResult, JobStatus
from gcpjobs.states import JobState
from gcpjobs.watch.ratelimit import RateLimit
from gcpjobs.watch.shared import JobWatcher
from tests.clients.conftest import target_for
from tests.clients.test_cloudrun_statuses_scale import PAGE, advance, submit
from tests.waiting import wait_for_async

EXECUTIONS = 3 * PAGE


class ListingHeldAfterFirstPage(AsyncCloudRunClient):
    """Once `hold()` is called, the next listing to start stops after its first page (its
    statuses already handed on) until `release` is set. A listing already under way when
    `hold()` is called is not held: its first page may predate what the test set up."""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.holding = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    def hold(self) -> None:
        self.holding = True

    async def _status_pages(
        self, parent: str, wanted: set[str], rate_limit: RateLimit | None
    ) -> AsyncGenerator[builtins.list[JobStatus], None]:
        hold_this, self.holding = self.holding, False
        pages = super()._status_pages(parent, wanted, rate_limit)
        async with contextlib.aclosing(pages):
            async for page in pages:
                yield page
                if hold_this:
                    hold_this = False
                    self.held.set()
                    await self.release.wait()


@pytest.fixture()
def held(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    """A private emulator whose executions wait before their tasks start until advanced."""
    return emulator_factory(queued_seconds=None)


async def test_first_page_is_reported_while_later_pages_are_still_unread(
    held: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloudrun_module, "_STATUS_PAGE_SIZE", PAGE)
    watcher = JobWatcher()
    async with ListingHeldAfterFirstPage(target=target_for(held)) as client:
        names = await submit(client, "paged", EXECUTIONS)
        known = {status.name: status for status in
                 await asyncio.gather(*(client.get(name) for name in names))}
        # ListExecutions is newest first: the newest is on the first page, the oldest on the
        # last.
        listed = [status.name async for status in client.list()]
        assert sorted(listed) == sorted(names)
        newest, oldest = listed[0], listed[-1]
        waits: dict[str, asyncio.Task[JobResult]] = {
            name: asyncio.create_task(watcher.wait(client, name, known=known[name], timeout=60))
            for name in names  # all watched: listing three pages beats thirty Gets
        }
        try:
            async def ended(name: str) -> bool:
                return (await client.get(name)).state is JobState.SUCCEEDED

            await advance(held, newest)
            await wait_for_async(lambda: ended(newest), timeout=30,
                                 message=f"{newest} to succeed")
            # A listing that starts now reads the first page after the newest ended, and
            # stops there.
            client.hold()
            await asyncio.wait_for(client.held.wait(), 30)

            async def newest_reported() -> bool:
                return waits[newest].done()

            await wait_for_async(newest_reported, timeout=10,
                                 message="the first page's execution to be reported")
            assert (await waits[newest]).state is JobState.SUCCEEDED
            # The oldest ends while the listing waits before its last page: only that page
            # can report it. (Advanced before the hold, a listing that had not been held
            # could read it first, as a busy machine showed.)
            await advance(held, oldest)
            await wait_for_async(lambda: ended(oldest), timeout=30,
                                 message=f"{oldest} to succeed")
            assert not waits[oldest].done()  # on the last page, not read yet
            client.release.set()
            assert (await asyncio.wait_for(waits[oldest], 30)).state is JobState.SUCCEEDED
        finally:
            client.release.set()
            for task in waits.values():
                task.cancel()
            await asyncio.gather(*waits.values(), return_exceptions=True)
