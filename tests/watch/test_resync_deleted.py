"""A watched job deleted before the watcher saw it end: its wait fails with JobNotFoundError.

Against a private emulator whose jobs are held in QUEUED (no processes). The watcher's poll is
stalled by a gate in the client while the job is cancelled, ends and is deleted, so "deleted
before its end was observed" is a fact, not a timing. Vertex' incremental listing shows only
jobs that changed and still exist, so it never reports the deleted job: only the full
`statuses()` of every watched name, every `resync` seconds, finds it gone (with one Get). Cloud
Run has no incremental listing, so every cycle is a full one and finds it gone at once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import pytest

from gcpjobs.clients.cloudrun import AsyncCloudRunClient
from gcpjobs.clients.vertex import AsyncVertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import JobNotFoundError
from gcpjobs.results import JobResult
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.states import JobState
from gcpjobs.watch.poll import PollInterval
from gcpjobs.watch.shared import JobWatcher
from tests.clients.conftest import python_job, request_counts, target_for, unique_label
from tests.waiting import wait_for_async
from tests.watch.support import GatedClient, GatedCloudRunClient

GET_JOB, GET_EXECUTION = "JobService.GetCustomJob", "Executions.GetExecution"
RESYNC = 2.0  # seconds: short, so the test is quick; the incremental cycles run every 0.02 s
# How long after the delete the outcome may take: the resync period, and room for a slow host.
OUTCOME_WITHIN = RESYNC + 10.0
WAIT_TIMEOUT = 60.0  # the wait's own timeout: far beyond, so it never decides the outcome


async def _state_is(client: AsyncVertexClient | AsyncCloudRunClient, name: str,
                    state: JobState) -> bool:
    return (await client.get(name)).state is state


async def _outcome(task: asyncio.Task[JobResult]) -> BaseException | JobResult:
    """The wait's outcome within OUTCOME_WITHIN seconds (a hung wait fails the test)."""
    try:
        return await asyncio.wait_for(task, OUTCOME_WITHIN)
    except asyncio.TimeoutError:
        raise AssertionError(
            f"the wait of a deleted job had no outcome {OUTCOME_WITHIN:g}s after the delete: "
            "no full resync found it gone"
        ) from None
    except Exception as error:
        return error


async def test_vertex_job_deleted_unseen_is_found_gone_at_the_resync(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    watcher = JobWatcher(interval=PollInterval.fixed(0.02), overlap=0.0, resync=RESYNC)
    seen: list[JobState] = []
    async with GatedClient(target=target_for(server)) as client:
        created = await client.create(python_job("pass"))
        name = created.name
        task = asyncio.create_task(watcher.wait(
            client, name, known=created, timeout=WAIT_TIMEOUT,
            on_change=lambda change: seen.append(change.current),
        ))

        await client.cycles(2)  # the job is observed; the listing is incremental
        assert not task.done()

        # Between two cycles, the job ends (cancelled while held in QUEUED) and is deleted.
        client.gate.clear()
        await client.cancel(name)
        await wait_for_async(lambda: _state_is(client, name, JobState.CANCELLED), timeout=10,
                             message="the job to be cancelled")
        await client.delete(name)
        with pytest.raises(JobNotFoundError):
            await client.get(name)
        listed_before, checked_before = len(client.listed), len(client.checked)
        gets_before = request_counts(server).get(GET_JOB, 0)
        client.gate.set()

        outcome = await _outcome(task)
        gets = request_counts(server).get(GET_JOB, 0) - gets_before
        listed_after = client.listed[listed_before:]
        checked_after = client.checked[checked_before:]

    assert isinstance(outcome, JobNotFoundError), outcome
    assert outcome.code == "NOT_FOUND" and name in str(outcome) and "\n" not in str(outcome)
    assert seen == [JobState.QUEUED]  # its end was never observed
    # The incremental listing ran after the delete and never showed the job; the full
    # statuses() of the resync asked about it, and one Get found it gone.
    assert listed_after and all(name not in listed for listed in listed_after)
    assert checked_after.count(name) == 1, checked_after
    assert gets == 1
    assert watcher.watched == 0


async def test_cloud_run_execution_deleted_unseen_is_found_gone_at_the_next_cycle(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    # A resync that never comes due: Cloud Run cannot list by update time, so every cycle is
    # a full statuses() already.
    watcher = JobWatcher(interval=PollInterval.fixed(0.02), overlap=0.0, resync=3600.0)
    seen: list[JobState] = []
    job = CloudRunJob(name="deleted-unseen", image="python:3.11",
                      command=[sys.executable, "-c", "pass"], labels={"suite": unique_label()},
                      max_retries=0)
    async with GatedCloudRunClient(target=target_for(server)) as client:
        created = await client.create(job)
        name = created.name
        task = asyncio.create_task(watcher.wait(
            client, name, known=created, timeout=WAIT_TIMEOUT,
            on_change=lambda change: seen.append(change.current),
        ))
        goal = client.polls_done + 2
        await wait_for_async(lambda: _true(client.polls_done >= goal), timeout=10,
                             message="2 watcher cycles")
        assert not task.done()

        client.gate.clear()
        await client.cancel(name)
        await wait_for_async(lambda: _state_is(client, name, JobState.CANCELLED), timeout=10,
                             message="the execution to be cancelled")
        await client.delete_job(name)  # its Job, and with it the execution
        with pytest.raises(JobNotFoundError):
            await client.get(name)
        gets_before = request_counts(server).get(GET_EXECUTION, 0)
        client.gate.set()

        outcome = await _outcome(task)
        gets = request_counts(server).get(GET_EXECUTION, 0) - gets_before

    assert isinstance(outcome, JobNotFoundError), outcome
    assert outcome.code == "NOT_FOUND" and name in str(outcome) and "\n" not in str(outcome)
    assert seen == [created.state]  # its end was never observed
    assert gets == 1  # the listing did not show it; one Get found it gone
    assert watcher.watched == 0


async def _true(value: bool) -> bool:
    return value
