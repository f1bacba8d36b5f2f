"""wait_until_terminal with a scripted fetch function (pure: no server)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone

import pytest

from gcpjobs.errors import GcpJobsError
from gcpjobs.results import JobStatus
from gcpjobs.states import JobState
from gcpjobs.watch.events import StateChange
from gcpjobs.watch.poll import PollInterval, WaitTimeoutError, wait_until_terminal

NAME = "projects/p/locations/us-central1/customJobs/1"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
FAST = PollInterval(fast=0.001, cap=0.004)


def status(state: JobState, second: int = 0) -> JobStatus:
    return JobStatus(name=NAME, display_name="job", state=state, update_time=T0 + timedelta(seconds=second))


def scripted(states: Sequence[JobState]) -> tuple[Callable[[], Awaitable[JobStatus]], list[int]]:
    """A fetch that returns the states in order (and repeats the last); counts its calls."""
    calls = [0]

    async def fetch() -> JobStatus:
        index = min(calls[0], len(states) - 1)
        calls[0] += 1
        return status(states[index], second=index)

    return fetch, calls


Q, P, R, S, F = JobState.QUEUED, JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED


async def test_every_change_is_reported_once_in_order() -> None:
    fetch, calls = scripted([Q, Q, P, P, P, R, R, R, R, S])
    seen: list[StateChange] = []
    final = await wait_until_terminal(fetch, on_change=seen.append, interval=FAST)
    assert [(c.previous, c.current) for c in seen] == [(None, Q), (Q, P), (P, R), (R, S)]
    assert final.state is S
    assert calls[0] == 10  # stops polling at the terminal state
    # `at` is the server's update_time of the observation that showed the change.
    assert [c.at for c in seen] == [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=5),
                                    T0 + timedelta(seconds=9)]
    assert all(c.observed_at.tzinfo is not None and c.name == NAME for c in seen)
    assert seen[-1].status is not None and seen[-1].is_terminal


async def test_async_callback_is_awaited_before_the_next_poll() -> None:
    fetch, calls = scripted([Q, R, F])
    calls_at_callback: list[int] = []

    async def on_change(change: StateChange) -> None:
        await asyncio.sleep(0)
        calls_at_callback.append(calls[0])

    final = await wait_until_terminal(fetch, on_change=on_change, interval=FAST)
    assert final.state is F
    assert calls_at_callback == [1, 2, 3]


async def test_already_terminal_job_reports_one_change() -> None:
    fetch, calls = scripted([S])
    seen: list[StateChange] = []
    await wait_until_terminal(fetch, on_change=seen.append, interval=FAST)
    assert [(c.previous, c.current) for c in seen] == [(None, S)]
    assert calls[0] == 1


async def test_timeout_raises_a_one_line_error_naming_the_state() -> None:
    fetch, _ = scripted([R])
    with pytest.raises(WaitTimeoutError) as caught:
        await wait_until_terminal(fetch, interval=FAST, timeout=0.05)
    error = caught.value
    assert isinstance(error, GcpJobsError) and isinstance(error, TimeoutError)
    assert error.state is R
    assert "\n" not in str(error) and "RUNNING" in str(error) and NAME in str(error)


async def test_timeout_also_bounds_a_hanging_fetch() -> None:
    async def hang() -> JobStatus:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    with pytest.raises(WaitTimeoutError) as caught:
        await wait_until_terminal(hang, interval=FAST, timeout=0.05, name=NAME)
    assert caught.value.state is None and NAME in str(caught.value)


async def test_fetch_errors_propagate() -> None:
    async def broken() -> JobStatus:
        raise GcpJobsError("boom")

    with pytest.raises(GcpJobsError, match="boom"):
        await wait_until_terminal(broken, interval=FAST)


async def test_interval_grows_while_unchanged_and_resets_on_change(monkeypatch: pytest.MonkeyPatch) -> None:
    fetch, _ = scripted([Q, Q, Q, Q, R, R, S])
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    await wait_until_terminal(fetch, interval=PollInterval(fast=1.0, cap=2.0, growth=1.5))
    # Q(change) 1.0, Q 1.5, Q 2.0 (cap), Q 2.0, R(change) 1.0, R 1.5, S: done.
    assert sleeps == [1.0, 1.5, 2.0, 2.0, 1.0, 1.5]


def test_poll_interval_presets_and_validation() -> None:
    emulator, gcp = PollInterval.for_emulator(), PollInterval.for_gcp()
    assert emulator.fast <= 0.1 and emulator.cap <= 0.5
    # At the GCP cap, one job costs at most 2 reads a minute (quota: 600/min/region).
    assert gcp.fast == 2.0 and 60 / gcp.cap <= 2
    assert PollInterval.fixed(5).after(5) == 5
    with pytest.raises(ValueError):
        PollInterval(fast=0, cap=1)


async def test_a_known_first_observation_is_reported_without_fetching_it() -> None:
    fetch, calls = scripted([R, S])
    seen: list[StateChange] = []
    await wait_until_terminal(fetch, on_change=seen.append, interval=FAST, first=status(Q))
    assert [(c.previous, c.current) for c in seen] == [(None, Q), (Q, R), (R, S)]
    assert calls[0] == 2
