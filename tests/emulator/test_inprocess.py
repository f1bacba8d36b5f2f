"""The in-process emulator: EmulatorProcess's surface and settings, private state per instance,
nothing done to the test process, no job process left behind; and `gcpjobs.testing`."""

from __future__ import annotations

import dataclasses
import inspect
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import gcpjobs
from gcpjobs.emulator.config import EmulatorConfig
from gcpjobs.emulator.inprocess import EmulatorSettings, InProcessEmulator
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from gcpjobs.testing import emulator_environment, emulator_target, local_emulator
from tests.conftest import grpc_client
from tests.emulator.support import (
    PARENT,
    PYTHON,
    State,
    custom_job,
    process_gone,
    read_pids,
    wait_until,
)
from tests.waiting import wait_for

# What only a process has; everything else EmulatorProcess offers, InProcessEmulator offers too.
PROCESS_ONLY = {"pid", "kill", "output"}
# A replica that writes its pid and ignores SIGTERM: stopping must come to SIGKILL.
STUBBORN = ("import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "open(os.path.join(sys.argv[1], 'pid'), 'w').write(str(os.getpid())); time.sleep(300)")


def _public(kind: type) -> set[str]:
    return {name for name in dir(kind) if not name.startswith("_")}


def test_it_offers_what_an_emulator_process_offers(tmp_path: Path) -> None:
    assert _public(EmulatorProcess) - _public(InProcessEmulator) == PROCESS_ONLY
    process_settings = set(inspect.signature(EmulatorProcess).parameters) - {
        "data_dir", "extra_args", "env"}
    assert process_settings <= set(EmulatorSettings.__annotations__)
    assert set(EmulatorSettings.__annotations__) == {
        field.name for field in dataclasses.fields(EmulatorConfig)} - {"data_dir"}
    in_process = InProcessEmulator(tmp_path, host="::1", cancel_grace_seconds=0.5)
    process = EmulatorProcess(tmp_path, host="::1", cancel_grace_seconds=0.5)
    assert in_process.config == process.config  # free ports, and the same defaults


def test_settings_mean_what_the_flags_mean(
    emulator_factory: Callable[..., InProcessEmulator], tmp_path: Path
) -> None:
    server = emulator_factory(queued_seconds=None, pending_seconds=None, cancel_grace_seconds=0.5)
    assert server.configure() == {"queued_seconds": None, "pending_seconds": None,
                                  "cancel_grace_seconds": 0.5}
    client = grpc_client(server)
    created = client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    assert client.get_custom_job(name=created.name).state == State.JOB_STATE_QUEUED
    server.advance(created.name)
    server.advance(created.name)
    assert wait_until(client, created.name).state == State.JOB_STATE_SUCCEEDED
    assert server.stats()["requests"]["JobService.CreateCustomJob"] == 1
    assert server.admin_headers == {"Authorization": f"Bearer {server.admin_token}"}
    client.transport.close()


def test_two_at_once_share_nothing(emulator_factory: Callable[..., InProcessEmulator],
                                   tmp_path: Path) -> None:
    first = emulator_factory(tmp_path / "first", queued_seconds=None)
    second = emulator_factory(tmp_path / "second")
    assert first.grpc_address != second.grpc_address
    first.inject_fault("JobService.GetCustomJob", "unavailable")
    jobs = grpc_client(first)
    jobs.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    other = grpc_client(second)

    assert list(other.list_custom_jobs(parent=PARENT)) == []
    assert second.faults()["armed"] == {}
    assert second.configure()["queued_seconds"] == 0.0
    assert "JobService.CreateCustomJob" not in second.stats()["requests"]
    jobs.transport.close()
    other.transport.close()


def test_one_data_directory_serves_one_emulator(
    emulator_factory: Callable[..., InProcessEmulator], tmp_path: Path
) -> None:
    emulator_factory(tmp_path / "data")
    with pytest.raises(EmulatorError, match="another emulator is already running"):
        InProcessEmulator(tmp_path / "data").start()


def test_stopping_kills_every_job_process_and_leaves_the_test_process_as_it_was(
    tmp_path: Path,
) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    reports = tmp_path / "reports"
    reports.mkdir()
    with InProcessEmulator(tmp_path / "data", cancel_grace_seconds=0.2) as server:
        client = grpc_client(server)
        created = client.create_custom_job(
            parent=PARENT, custom_job=custom_job([PYTHON, "-c", STUBBORN, str(reports)]))
        pid = read_pids(reports, ["pid"])["pid"]
        client.transport.close()

    assert wait_for(lambda: process_gone(pid), timeout=10, message=f"job process {pid} to go")
    assert not (tmp_path / "data" / "emulator.json").exists()
    assert not (tmp_path / "data" / "admin-token").exists()
    current = os.umask(umask)
    assert current == umask
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    with InProcessEmulator(tmp_path / "data") as again:  # the lock went with it
        client = grpc_client(again)
        assert client.get_custom_job(name=created.name).state == State.JOB_STATE_FAILED
        client.transport.close()


def test_a_started_one_cannot_start_again_nor_listen_beyond_loopback(tmp_path: Path) -> None:
    with InProcessEmulator(tmp_path / "data") as server, pytest.raises(
            EmulatorError, match="already started; create a new one"):
        server.start()
    with pytest.raises(EmulatorError, match=r"refusing to listen on 0\.0\.0\.0"):
        InProcessEmulator(tmp_path / "other", host="0.0.0.0").start()


def test_users_point_gcpjobs_at_a_local_emulator(tmp_path: Path) -> None:
    with local_emulator(tmp_path / "emulator") as emulator:
        assert emulator_target(emulator) == emulator.target
        assert emulator.target.grpc_address == emulator.grpc_address
        assert emulator_environment(emulator) == emulator.environment == {
            "GCPJOBS_EMULATOR_HOST": emulator.grpc_address,
            "GCPJOBS_EMULATOR_REST_HOST": emulator.rest_endpoint.removeprefix("http://"),
        }
        client = gcpjobs.VertexClient(target=emulator.target)
        result = client.run(gcpjobs.VertexJob(name="local", image="python:3.11", command=["true"]),
                            timeout=30)
        client.close()
    assert result.state == gcpjobs.JobState.SUCCEEDED


async def test_it_starts_and_stops_inside_a_running_event_loop(tmp_path: Path) -> None:
    with InProcessEmulator(tmp_path / "data") as server:
        assert server.stats()["requests"] == {}
