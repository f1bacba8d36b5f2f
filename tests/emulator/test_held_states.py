"""Every state can be caught: jobs held in QUEUED and PENDING until advanced, or delayed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from tests.conftest import grpc_client
from tests.emulator.support import PARENT, State, custom_job, wait_until


def test_held_job_moves_one_state_per_advance(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None)
    client = grpc_client(server)
    release = tmp_path / "release"
    script = 'while [ ! -f "$RELEASE" ]; do sleep 0.02; done'
    created = client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["sh", "-c", script], env={"RELEASE": str(release)})
    )

    assert client.get_custom_job(name=created.name).state == State.JOB_STATE_QUEUED
    server.advance(created.name)
    pending = client.get_custom_job(name=created.name)
    assert pending.state == State.JOB_STATE_PENDING
    assert "start_time" not in pending
    server.advance(created.name)
    running = client.get_custom_job(name=created.name)
    assert running.state == State.JOB_STATE_RUNNING
    assert running.start_time >= pending.update_time

    with pytest.raises(EmulatorError, match="JOB_STATE_RUNNING, not queued or pending"):
        server.advance(created.name)

    release.touch()
    assert wait_until(client, created.name).state == State.JOB_STATE_SUCCEEDED
    assert server.stats()["jobs"]["succeeded"] == 1


def test_changing_a_hold_to_a_delay_releases_waiting_jobs(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=0.0)
    client = grpc_client(server)
    created = client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    assert client.get_custom_job(name=created.name).state == State.JOB_STATE_QUEUED

    settings = server.configure(queued_seconds=0.2)

    assert settings == {"queued_seconds": 0.2, "pending_seconds": 0.0, "cancel_grace_seconds": 1.0}
    assert wait_until(client, created.name).state == State.JOB_STATE_SUCCEEDED


def test_a_held_job_can_be_cancelled(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    server = emulator_factory(queued_seconds=None)
    client = grpc_client(server)
    created = client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))

    client.cancel_custom_job(name=created.name)

    done = wait_until(client, created.name)
    assert done.state == State.JOB_STATE_CANCELLED
    assert done.error.code == 1
    assert "start_time" not in done


def test_bad_settings_are_refused_in_one_line(emulator: EmulatorProcess) -> None:
    with pytest.raises(EmulatorError, match="queued_seconds must be a number of seconds >= 0"):
        emulator.configure(queued_seconds=-1)
    with pytest.raises(EmulatorError, match="unknown setting 'speed'"):
        emulator.configure(speed=2)
    with pytest.raises(EmulatorError, match="The CustomJob does not exist"):
        emulator.advance(f"{PARENT}/customJobs/1234567890123456789")
