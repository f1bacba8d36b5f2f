"""Cloud Run `statuses()` at scale: what one cycle costs in ListExecutions pages and Gets.

ListExecutions has no filter, so a cycle reads `.../jobs/-` (newest first) down to the oldest
wanted execution, unless a GetExecution for each name still unseen costs fewer calls than the
pages still needed to reach them (names behind many executions nobody asked about). Checked
with the emulator's request counters on a private emulator that holds executions before
their tasks start, with pages of ten so that a few dozen executions make several pages.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import pytest
from google.cloud import run_v2
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

import gcpjobs.clients.cloudrun as cloudrun_module
from gcpjobs.clients.cloudrun import AsyncCloudRunClient, _worth_listing, job_name_of
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from gcpjobs.results import JobStatus
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.states import JobState
from tests.clients.conftest import request_counts, target_for
from tests.waiting import wait_for, wait_for_async

LIST, GET = "Executions.ListExecutions", "Executions.GetExecution"
PAGE = 10


@pytest.fixture()
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cloudrun_module, "_STATUS_PAGE_SIZE", PAGE)


@pytest.fixture()
def held(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    """A private emulator whose executions wait before their tasks start until advanced."""
    return emulator_factory(queued_seconds=None)


def spec(name: str) -> CloudRunJob:
    return CloudRunJob(name=name, image="python:3.11", command=[sys.executable, "-c", "pass"],
                       max_retries=0)


async def submit(client: AsyncCloudRunClient, name: str, count: int) -> list[str]:
    created = await asyncio.gather(*(client.create(spec(name)) for _ in range(count)))
    assert all(status.state is JobState.PENDING for status in created)
    return [status.name for status in created]


async def advance(server: EmulatorProcess, name: str) -> None:
    """Start a held execution's tasks, once its run has reached the hold (RunJob returns just
    before)."""

    def attempt() -> bool:
        try:
            server.advance(name)
        except EmulatorError as error:
            if "not waiting to start" not in str(error):
                raise
            return False
        return True

    await asyncio.to_thread(wait_for, attempt, 10.0, 0.02, f"{name} to be held")


def calls(server: EmulatorProcess, before: Mapping[str, Any]) -> dict[str, int]:
    after = request_counts(server)
    return {method: int(after.get(method, 0)) - int(before.get(method, 0))
            for method in (LIST, GET)}


async def cycle(
    server: EmulatorProcess, client: AsyncCloudRunClient, names: list[str]
) -> tuple[dict[str, JobStatus], dict[str, int]]:
    before = request_counts(server)
    found = await client.statuses(names)
    return found, calls(server, before)


async def test_held_executions_cost_their_pages_and_not_the_older_ended_ones(
    held: EmulatorProcess, small_pages: None
) -> None:
    async with AsyncCloudRunClient(target=target_for(held)) as client:
        ended = await submit(client, "ended", 5)
        for name in ended:
            await advance(held, name)

        async def all_ended() -> bool:
            return all([(await client.get(name)).is_terminal for name in ended])

        await wait_for_async(all_ended, timeout=30, message="the older executions to end")
        watched = await submit(client, "watched", 25)  # newer: the first 25 of the listing

        first, first_calls = await cycle(held, client, watched)
        again, again_calls = await cycle(held, client, watched)
        moved = watched[3], watched[17]
        for name in moved:
            await advance(held, name)

        async def started() -> bool:
            return all([(await client.get(name)).state is not JobState.PENDING for name in moved])

        await wait_for_async(started, timeout=30, message="the advanced executions to start")
        after_move, move_calls = await cycle(held, client, watched)

    assert set(first) == set(again) == set(after_move) == set(watched)
    assert all(status.state is JobState.PENDING for status in first.values())
    # 25 executions make three pages of ten; the older ended ones on the third page are read
    # with it, and no further page is asked for.
    assert first_calls == again_calls == move_calls == {LIST: 3, GET: 0}
    assert {name for name, status in after_move.items()
            if status.state is not JobState.PENDING} == set(moved)


async def test_names_behind_many_unwanted_executions_are_got_not_paged_to(
    held: EmulatorProcess, small_pages: None
) -> None:
    official = run_v2.JobsClient(
        transport=JobsGrpcTransport(channel=grpc.insecure_channel(held.grpc_address))
    )
    async with AsyncCloudRunClient(target=target_for(held)) as client:
        watched = await submit(client, "watched", 3)  # the oldest: behind everything below
        await submit(client, "someone-else", 40)

        # Where the names are is not known yet: the listing reads down to them (five pages).
        first, first_calls = await cycle(held, client, watched)
        # Now it is: three Gets cost less than five pages.
        second, second_calls = await cycle(held, client, watched)

        # Changes are still seen, by the Gets: one runs and ends, one is cancelled and its job
        # deleted (found gone), and a new execution (at the head of the listing) joins.
        await advance(held, watched[0])
        await client.cancel(watched[1])

        async def cancelled() -> bool:
            return (await client.get(watched[1])).state is JobState.CANCELLED

        await wait_for_async(cancelled, timeout=30, message="the cancel to end the execution")
        await asyncio.to_thread(official.delete_job(name=job_name_of(watched[1])).result)
        newest = (await submit(client, "watched", 1))[0]

        async def succeeded() -> bool:
            return (await client.get(watched[0])).state is JobState.SUCCEEDED

        await wait_for_async(succeeded, timeout=30, message="the advanced execution to end")
        third, third_calls = await cycle(held, client, [*watched, newest])

    assert set(first) == set(second) == set(watched)
    assert all(status.state is JobState.PENDING for status in [*first.values(), *second.values()])
    assert first_calls == {LIST: 5, GET: 0}
    assert second_calls == {LIST: 0, GET: 3}
    assert set(third) == {watched[0], watched[2], newest}  # the deleted one is gone
    assert third[watched[0]].state is JobState.SUCCEEDED  # its final state
    assert third[watched[2]].state is third[newest].state is JobState.PENDING
    # Four names, three of them far down: four Gets (five pages would be needed to list them).
    assert sum(third_calls.values()) <= 4


def test_worth_listing_weighs_pages_to_reach_the_names_against_a_get_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cloudrun_module, "_STATUS_PAGE_SIZE", 100)
    dense = {f"e{i}": i for i in range(1000)}
    # Every name of the region wanted, in ten pages: listing wins until one name is left.
    assert _worth_listing(set(dense), dense, 0, 0)
    assert _worth_listing({"e998", "e999"}, dense, 0, 900)
    assert not _worth_listing({"e999"}, dense, 0, 900)
    # Three names behind 900 others: ten pages, or three Gets.
    assert not _worth_listing({"e900", "e950", "e999"}, dense, 0, 0)
    # Names whose place is not known need at least the pages that hold them.
    assert _worth_listing({f"new{i}" for i in range(150)}, {}, 0, 0)
    assert not _worth_listing({"new"}, {}, 0, 0)
    # Executions created since move the known places down (`shift`).
    assert not _worth_listing({"e50", "e60"}, dense, 150, 0)
    assert _worth_listing({"e50", "e60"}, dense, 0, 0)
