"""Every state change is reported: the emulator holds QUEUED and PENDING until the test
advances them, and the job runs until the test releases it, so each state lasts until the
client has seen it. Nothing is timed; the test moves the job only from `on_change`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from gcpjobs.clients.vertex import AsyncVertexClient, Transport, VertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.states import JobState
from gcpjobs.watch.events import StateChange
from tests.clients.conftest import python_job, target_for

EXPECTED = [JobState.QUEUED, JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED]


def gated_job_code(release: Path) -> str:
    """Run until `release` exists (at most 60 s, so nothing outlives a broken test)."""
    return (
        "import os, sys, time\n"
        "deadline = time.monotonic() + 60\n"
        f"while not os.path.exists({str(release)!r}):\n"
        "    if time.monotonic() > deadline: sys.exit(9)\n"
        "    time.sleep(0.01)\n"
    )


def mover(server: EmulatorProcess, release: Path) -> Callable[[StateChange], None]:
    """Moves the job one step on after each state the client reports."""

    def step(change: StateChange) -> None:
        if change.current in (JobState.QUEUED, JobState.PENDING):
            server.advance(change.name)
        elif change.current is JobState.RUNNING:
            release.touch()

    return step


def check_sequence(changes: list[StateChange]) -> None:
    assert [change.current for change in changes] == EXPECTED
    assert [change.previous for change in changes] == [None, *EXPECTED[:-1]]
    server_times = [change.at for change in changes]
    assert all(at is not None for at in server_times)
    assert server_times == sorted(server_times)  # type: ignore[type-var]
    assert len({change.name for change in changes}) == 1


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("how", ["run", "create+wait"])
async def test_every_state_is_reported_once_in_order(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path, transport: Transport, how: str
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    release = tmp_path / "release"
    step = mover(server, release)
    changes: list[StateChange] = []

    async def on_change(change: StateChange) -> None:  # async callbacks are awaited
        changes.append(change)
        await asyncio.to_thread(step, change)

    job = python_job(gated_job_code(release))
    async with AsyncVertexClient(target=target_for(server), transport=transport) as client:
        if how == "run":
            result = await client.run(job, on_change=on_change, timeout=60)
        else:
            created = await client.create(job)
            assert created.state is JobState.QUEUED
            result = await client.wait(created.name, on_change=on_change, timeout=60)
    assert result.state is JobState.SUCCEEDED
    check_sequence(changes)


def test_sync_client_reports_every_state(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    release = tmp_path / "release"
    step = mover(server, release)
    changes: list[StateChange] = []

    def on_change(change: StateChange) -> None:  # sync callbacks run in the client's thread
        changes.append(change)
        step(change)

    with VertexClient(target=target_for(server)) as client:
        result = client.run(python_job(gated_job_code(release)), on_change=on_change, timeout=60)
    assert result.state is JobState.SUCCEEDED
    check_sequence(changes)
