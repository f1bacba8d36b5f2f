"""`JobWatcher`: many jobs followed through one `statuses()` call per cycle, against the
emulator over a real socket. States are held by the emulator and moved on only from the
callbacks (as in tests/clients/test_state_changes.py), so every state lasts until seen."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

import pytest

from gcpjobs.clients.retry import RetryPolicy
from gcpjobs.clients.target import Target
from gcpjobs.clients.vertex import AsyncVertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import ApiError, GcpJobsError, JobNotFoundError
from gcpjobs.results import JobResult, JobStatus
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.states import JobState
from gcpjobs.watch.events import StateChange
from gcpjobs.watch.poll import PollInterval, WaitTimeoutError
from gcpjobs.watch.ratelimit import RateLimit
from gcpjobs.watch.shared import FAILURE_LIMIT, JobWatcher, default_watcher
from tests.clients.conftest import PARENT, python_job, request_counts, target_for, unique_label
from tests.clients.test_state_changes import gated_job_code
from tests.waiting import wait_for_async
from tests.watch.support import GatedCloudRunClient

Q, P, R = JobState.QUEUED, JobState.PENDING, JobState.RUNNING
LIST_JOBS, GET_JOB = "JobService.ListCustomJobs", "JobService.GetCustomJob"
LIST_FAULT = "JobService.ListCustomJobs"
# One attempt per call: each injected fault fails exactly one statuses() call.
ONE_ATTEMPT = RetryPolicy(initial=0.01, maximum=0.01, deadline=0.001)


class CountingVertexClient(AsyncVertexClient):
    """Records how many names each statuses() call asked about: what a per-job poller would
    have sent as separate Gets."""

    asked: list[int]

    async def statuses(
        self,
        names: Collection[str],
        *,
        rate_limit: RateLimit | None = None,
        on_status: Callable[[str, JobStatus], None] | None = None,
    ) -> dict[str, JobStatus]:
        self.asked = [*getattr(self, "asked", []), len(names)]
        return await super().statuses(names, rate_limit=rate_limit, on_status=on_status)

    async def updates(
        self, names: Collection[str], since: datetime, *, rate_limit: RateLimit | None = None
    ) -> dict[str, JobStatus] | None:
        self.asked = [*getattr(self, "asked", []), len(names)]
        return await super().updates(names, since, rate_limit=rate_limit)


def gated_exit(release: Path, code: int) -> str:
    """Run until `release` exists (60 s at most), then exit with `code`."""
    return gated_job_code(release) + f"sys.exit({code})\n"


def check_chain(changes: list[StateChange], expected: list[JobState]) -> None:
    assert [change.current for change in changes] == expected
    assert [change.previous for change in changes] == [None, *expected[:-1]]


async def test_many_jobs_through_one_watcher_cost_one_call_per_cycle(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    outcomes = ["succeed"] * 16 + ["fail"] * 6 + ["cancel"] * 2
    watcher = JobWatcher()
    changes: dict[str, list[StateChange]] = {}
    async with CountingVertexClient(target=target_for(server)) as client:
        created = await asyncio.gather(*(
            client.create(python_job(gated_exit(tmp_path / f"release-{i}", 3 if how == "fail" else 0)))
            for i, how in enumerate(outcomes)
        ))
        plan = {status.name: (how, tmp_path / f"release-{i}")
                for i, (how, status) in enumerate(zip(outcomes, created, strict=True))}

        async def step(change: StateChange) -> None:
            changes.setdefault(change.name, []).append(change)
            how, release = plan[change.name]
            if change.current in (Q, P):
                await asyncio.to_thread(server.advance, change.name)
            elif change.current is R and how == "cancel":
                await client.cancel(change.name)
            elif change.current is R:
                release.touch()

        before = request_counts(server)
        results: list[JobResult] = await asyncio.gather(*(
            watcher.wait(client, status.name, known=status, on_change=step, timeout=60)
            for status in created
        ))
        after = request_counts(server)

    for status, result in zip(created, results, strict=True):
        how, _ = plan[status.name]
        seen = changes[status.name]
        if how == "cancel":
            assert result.state is JobState.CANCELLED
            # CANCELLING may pass between two polls; the rest of the chain may not.
            check_chain(seen, [state for state in (Q, P, R, JobState.CANCELLING,
                                                   JobState.CANCELLED)
                               if state in [c.current for c in seen]])
            assert [c.current for c in seen][:3] == [Q, P, R]
        else:
            final = JobState.SUCCEEDED if how == "succeed" else JobState.FAILED
            check_chain(seen, [Q, P, R, final])
            assert result.state is final and (result.error is None) == (how == "succeed")
    assert watcher.watched == 0
    lists = after.get(LIST_JOBS, 0) - before.get(LIST_JOBS, 0)
    gets = after.get(GET_JOB, 0) - before.get(GET_JOB, 0)
    assert lists == watcher.calls == len(client.asked)  # one list call per cycle (one page)
    assert max(client.asked) == len(outcomes)  # ... however many jobs it covered
    # The listing after the first reaches back only to the previous cycle and shows ended
    # jobs too: no Get at all, not even when a job ends.
    assert gets == 0
    # Each job was checked with statuses() at most once, in the first cycle (not at all
    # when its create reply was newer than the cursor).
    assert watcher.full_checks <= len(outcomes)
    # A poller per job would have sent a Get for every job in every cycle. (The jobs move in
    # step here, so there are few cycles: the gap only grows with slower or longer jobs.)
    per_job_polling = sum(client.asked)
    assert (lists + gets) * 2 < per_job_polling, (lists, gets, per_job_polling)


async def test_cloud_run_and_vertex_jobs_share_one_watcher(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    watcher = JobWatcher()

    def run_job(code: str) -> CloudRunJob:
        return CloudRunJob(name="watched", image="python:3.11", command=[sys.executable, "-c", code],
                           labels={"suite": unique_label()}, max_retries=0)

    async with GatedCloudRunClient(target=target_for(emulator)) as run, \
            AsyncVertexClient(target=target_for(emulator)) as vertex:
        executions = [await run.create(run_job(code))
                      for code in ("pass", "import sys; sys.exit(2)", "pass")]
        custom = await vertex.create(python_job("pass"))
        before = request_counts(emulator)
        results = await asyncio.gather(
            *(watcher.wait(run, e.name, known=e, timeout=30) for e in executions),
            watcher.wait(vertex, custom.name, known=custom, timeout=30),
        )
        after = request_counts(emulator)
        for execution in executions:
            await run.finish(run_job("pass"), execution.name)
    assert [r.state for r in results] == [JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED,
                                          JobState.SUCCEEDED]
    assert results[1].status.tasks is not None and results[1].status.tasks.failed == 1
    # Ended executions still show in the listing, so each cycle costs one Cloud Run call: one
    # page while two or three are watched, one GetExecution (no dearer) once one is left.
    reads = sum(after.get(method, 0) - before.get(method, 0)
                for method in ("Executions.ListExecutions", "Executions.GetExecution"))
    assert reads == run.polls_done, (reads, run.polls_done)
    assert watcher.watched == 0


async def test_timeout_leaves_the_job_running(emulator: EmulatorProcess, tmp_path: Path) -> None:
    release = tmp_path / "release"
    watcher = JobWatcher()
    async with AsyncVertexClient(target=target_for(emulator)) as client:
        created = await client.create(python_job(gated_job_code(release)))
        try:
            with pytest.raises(WaitTimeoutError) as caught:
                await watcher.wait(client, created.name, known=created, timeout=0.5)
            assert not (await client.get(created.name)).is_terminal
        finally:
            release.touch()
        assert caught.value.name == created.name and caught.value.state is not None
        assert watcher.watched == 0
        # The job can still be waited for.
        assert (await watcher.wait(client, created.name, timeout=30)).succeeded


async def test_an_unknown_job_fails_only_its_own_wait(emulator: EmulatorProcess) -> None:
    watcher = JobWatcher()
    unknown = f"{PARENT}/customJobs/123123123123"
    async with AsyncVertexClient(target=target_for(emulator)) as client:
        created = await client.create(python_job("pass"))
        missing, result = await asyncio.gather(
            watcher.wait(client, unknown, timeout=30),
            watcher.wait(client, created.name, known=created, timeout=30),
            return_exceptions=True,
        )
    assert isinstance(missing, JobNotFoundError) and unknown in str(missing)
    assert "\n" not in str(missing)
    assert isinstance(result, JobResult) and result.succeeded


async def test_a_cancelled_or_failing_waiter_leaves_the_others_alone(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    watcher = JobWatcher()
    first_seen = asyncio.Event()
    after_cancel: list[StateChange] = []
    cancelled = False

    def record(change: StateChange) -> None:
        if cancelled:
            after_cancel.append(change)
        first_seen.set()

    def explode(change: StateChange) -> None:
        raise RuntimeError("callback failed")

    async with AsyncVertexClient(target=target_for(emulator)) as client:
        created = await client.create(python_job(gated_job_code(release)))
        doomed = asyncio.create_task(watcher.wait(client, created.name, on_change=record))
        survivor = asyncio.create_task(watcher.wait(client, created.name, timeout=30))
        failing = asyncio.create_task(watcher.wait(client, created.name, on_change=explode))
        await asyncio.wait_for(first_seen.wait(), 10)
        doomed.cancel()
        cancelled = True
        with pytest.raises(asyncio.CancelledError):
            await doomed
        with pytest.raises(RuntimeError, match="callback failed"):
            await failing
        release.touch()
        result = await survivor
    assert result.succeeded and after_cancel == []
    assert watcher.watched == 0


async def test_a_new_wait_is_observed_at_once_during_a_long_pause(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    watcher = JobWatcher(interval=PollInterval.fixed(60.0))
    seen: dict[str, list[JobState]] = {}

    def record(change: StateChange) -> None:
        seen.setdefault(change.name, []).append(change.current)

    async with AsyncVertexClient(target=target_for(emulator)) as client:
        first, second = [await client.create(python_job(gated_job_code(release))) for _ in range(2)]
        tasks = [asyncio.create_task(watcher.wait(client, first.name, on_change=record))]
        try:
            await wait_for_async(_true_when(lambda: first.name in seen), timeout=10,
                                 message="the first job's first observation")
            # The poll task now sleeps 60 s; a new job must not wait for it.
            tasks.append(asyncio.create_task(watcher.wait(client, second.name, on_change=record)))
            await wait_for_async(_true_when(lambda: second.name in seen), timeout=10,
                                 message="the second job's first observation")
            assert watcher.calls == 2
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            release.touch()
    assert watcher.watched == 0


def _true_when(condition: Callable[[], bool]) -> Callable[[], asyncio.Future[bool]]:
    def check() -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.set_result(condition())
        return future

    return check


async def test_failed_polls_are_retried_until_they_succeed(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = JobWatcher(interval=PollInterval(fast=0.01, cap=0.05))
    async with AsyncVertexClient(target=target_for(emulator), retry=ONE_ATTEMPT) as client:
        created = await client.create(python_job("pass"))
        emulator.inject_fault(LIST_FAULT, "unavailable", count=3)
        try:
            with caplog.at_level(logging.WARNING, logger="gcpjobs.watch.shared"):
                result = await watcher.wait(client, created.name, timeout=30)
        finally:
            emulator.clear_faults()
    assert result.succeeded
    failures = [r for r in caplog.records if "status poll" in r.getMessage()]
    # Three faults, one per failed poll, unless the retry's full jitter slept almost nothing
    # and one call spent two of them within ONE_ATTEMPT's millisecond.
    assert 2 <= len(failures) <= 3 and all("UNAVAILABLE" in r.getMessage() for r in failures)
    assert watcher.calls >= len(failures) + 1


async def test_polls_failing_for_too_long_fail_the_waits(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    watcher = JobWatcher(interval=PollInterval.fixed(0.01))
    async with AsyncVertexClient(target=target_for(emulator), retry=ONE_ATTEMPT) as client:
        created = await client.create(python_job(gated_job_code(release)))
        emulator.inject_fault(LIST_FAULT, "unavailable", count=1000)
        try:
            outcomes = await asyncio.gather(
                watcher.wait(client, created.name, known=created, timeout=30),
                watcher.wait(client, created.name, timeout=30),
                return_exceptions=True,
            )
        finally:
            emulator.clear_faults()
            release.touch()
    assert all(isinstance(o, ApiError) and o.code == "UNAVAILABLE" for o in outcomes), outcomes
    assert watcher.calls == FAILURE_LIMIT and watcher.watched == 0


async def test_aclose_fails_pending_waits_and_refuses_new_ones(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    watcher = JobWatcher()
    async with AsyncVertexClient(target=target_for(emulator)) as client:
        created = await client.create(python_job(gated_job_code(release)))
        try:
            pending = asyncio.create_task(watcher.wait(client, created.name, timeout=30))
            await wait_for_async(_true_when(lambda: watcher.calls > 0), timeout=10,
                                 message="the first poll")
            await watcher.aclose()
            with pytest.raises(GcpJobsError, match="closed"):
                await pending
            assert not (await client.get(created.name)).is_terminal  # left running
            with pytest.raises(GcpJobsError, match="closed"):
                await watcher.wait(client, created.name)
        finally:
            release.touch()


def test_default_watcher_is_one_per_event_loop() -> None:
    async def twice() -> tuple[JobWatcher, JobWatcher]:
        return default_watcher(), default_watcher()

    first, again = asyncio.run(twice())
    other, _ = asyncio.run(twice())
    assert first is again and other is not first


async def test_a_closed_default_watcher_is_replaced() -> None:
    watcher = default_watcher()
    await watcher.aclose()
    assert default_watcher() is not watcher and not default_watcher().closed


async def test_a_known_terminal_status_is_reported_without_polling() -> None:
    ended = JobStatus(name=f"{PARENT}/customJobs/7", display_name="done", state=JobState.SUCCEEDED)
    seen: list[StateChange] = []
    watcher = JobWatcher()
    client = AsyncVertexClient(target=Target(kind="emulator", project="p", grpc_address="127.0.0.1:9"))
    result = await watcher.wait(client, ended.name, known=ended, on_change=seen.append)
    assert result.status is ended and [(c.previous, c.current) for c in seen] == [
        (None, JobState.SUCCEEDED)
    ]
    assert watcher.calls == 0 and watcher.watched == 0
