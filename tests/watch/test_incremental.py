"""The watcher lists only what changed since its previous cycle, and keeps to its budget.

Against a private emulator whose jobs are held in QUEUED and PENDING (no processes) and moved
on by the test. The poll is stalled at will by a gate in the client, so "between two cycles"
is a fact, not a timing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gcpjobs.clients.vertex import AsyncVertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.results import JobResult
from gcpjobs.states import JobState
from gcpjobs.watch.events import StateChange
from gcpjobs.watch.poll import PollInterval
from gcpjobs.watch.ratelimit import RateLimit
from gcpjobs.watch.shared import JobWatcher
from tests.clients.conftest import python_job, request_counts, target_for
from tests.waiting import wait_for, wait_for_async
from tests.watch.support import GatedClient

Q, P, R = JobState.QUEUED, JobState.PENDING, JobState.RUNNING
LIST_JOBS, GET_JOB = "JobService.ListCustomJobs", "JobService.GetCustomJob"


def recorder(into: dict[str, list[JobState]]) -> Callable[[StateChange], None]:
    def record(change: StateChange) -> None:
        into.setdefault(change.name, []).append(change.current)

    return record


async def test_no_change_is_missed_between_cycles(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    watcher = JobWatcher(interval=PollInterval.fixed(0.02), overlap=0.0, resync=3600)
    seen: dict[str, list[JobState]] = {}
    async with GatedClient(target=target_for(server)) as client:
        ends = await client.create(python_job("pass"))
        stale = await client.create(python_job("pass"))
        waits: list[asyncio.Task[JobResult]] = [asyncio.create_task(
            watcher.wait(client, ends.name, known=ends, on_change=recorder(seen), timeout=30)
        )]
        await client.cycles(2)  # the first (full) cycle is done, the listing is incremental
        before = request_counts(server)

        # A job moves on, and its wait starts only later with the create's reply: the change
        # is older than the cursor, so the watcher checks that job once with statuses().
        await asyncio.to_thread(server.advance, stale.name)
        await client.cycles(2)
        waits.append(asyncio.create_task(
            watcher.wait(client, stale.name, known=stale, on_change=recorder(seen), timeout=30)
        ))
        await wait_for_async(lambda: _async(seen.get(stale.name, [])[-1:] == [P]), timeout=10,
                             message="the stale job's PENDING")

        # The poll is stalled: a job runs to its end, and another is created, waited on
        # with its create's reply and moved on, all between two cycles.
        client.gate.clear()
        for _ in range(2):  # QUEUED -> PENDING -> RUNNING; the replica exits 0
            await asyncio.to_thread(server.advance, ends.name)
        await asyncio.to_thread(
            wait_for, lambda: server.stats()["jobs"].get("succeeded", 0) >= 1, 10,
            message="the job to end",
        )
        new = await client.create(python_job("pass"))
        waits.append(asyncio.create_task(
            watcher.wait(client, new.name, known=new, on_change=recorder(seen), timeout=30)
        ))
        await asyncio.to_thread(server.advance, new.name)
        client.gate.set()

        await wait_for_async(lambda: _async(seen.get(new.name, [])[-1:] == [P]), timeout=10,
                             message="the new job's PENDING")
        result = await waits[0]
        after = request_counts(server)
        checked = list(client.checked)
        for name in (stale.name, new.name):
            await client.cancel(name)
        await asyncio.gather(*waits[1:])

    assert result.state is JobState.SUCCEEDED
    assert seen[ends.name] == [Q, JobState.SUCCEEDED]  # the end, although never seen running
    assert seen[stale.name][:2] == [Q, P]
    assert seen[new.name][:2] == [Q, P]
    # Only the first cycle and the stale reply were checked with statuses(); the new job's
    # reply was newer than the cursor, so the listing of changes vouched for it.
    assert checked == [ends.name, stale.name]
    assert after.get(GET_JOB, 0) - before.get(GET_JOB, 0) == 0


async def test_calls_keep_to_the_budget(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    budget = RateLimit(per_minute=1200, burst=3)  # 20 a second; the interval asks for 100
    watcher = JobWatcher(interval=PollInterval.fixed(0.01), rate_limit=budget)
    async with AsyncVertexClient(target=target_for(server)) as client:
        job = await client.create(python_job("pass"))
        before, start = request_counts(server), time.monotonic()
        task = asyncio.create_task(watcher.wait(client, job.name, known=job, timeout=30))
        await wait_for_async(lambda: _async(budget.calls >= 25), timeout=10,
                             message="25 calls")
        after, elapsed = request_counts(server), time.monotonic() - start
        await client.cancel(job.name)
        await task
    made = sum(int(after.get(m, 0)) - int(before.get(m, 0)) for m in (LIST_JOBS, GET_JOB))
    assert made <= budget.burst + elapsed * 20 + 1, (made, elapsed)
    assert made >= 20  # it did poll as often as the budget allowed
    # The pause stretched to the budget: calls hardly had to wait for their slot.
    assert budget.waited < 0.5 * elapsed


def test_rate_limit_hands_out_a_burst_then_one_slot_per_spacing() -> None:
    now = [100.0]
    limit = RateLimit(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limit.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.backlog() == 1.0
    assert limit.reserve() == 1.0 and limit.reserve() == 2.0
    now[0] += 10  # idle: the burst refills, no more than it
    assert [limit.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]
    assert limit.calls == 9 and limit.waited == 4.0


async def _async(value: bool) -> bool:
    return value
