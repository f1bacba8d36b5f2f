"""Job faults through the control routes, seen through the OFFICIAL clients: a replica's
process tree SIGKILLed (`crash`), and a SPOT job's VMs reclaimed (`preempt`). See
docs/emulator.md, Job faults, for the behaviour chosen."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from google.cloud import aiplatform_v1, run_v2

from gcpjobs.emulator.executor import read_replica_logs
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from tests.conftest import grpc_client
from tests.emulator.cloudrun.support import create, job, run_clients, wait_completed
from tests.emulator.support import PARENT, State, custom_job, wait_until

# Runs until killed the first time; on its next start (a restart in the same working
# directory, as after a checkpoint) it exits 0 at once.
RESUMES = (
    "import os, time\n"
    "if os.path.exists('started'): raise SystemExit(0)\n"
    "open('started', 'w').close()\n"
    "time.sleep(300)\n"
)


def _job(scheduling: dict[str, object] | None = None) -> aiplatform_v1.CustomJob:
    spec = custom_job([sys.executable, "-c", RESUMES])
    if scheduling:
        spec.job_spec.scheduling = aiplatform_v1.Scheduling(**scheduling)
    return spec


def _running(client: aiplatform_v1.JobServiceClient, spec: aiplatform_v1.CustomJob,
             data_dir: Path) -> aiplatform_v1.CustomJob:
    created = client.create_custom_job(parent=PARENT, custom_job=spec)
    wait_until(client, created.name, {State.JOB_STATE_RUNNING})
    job_id = created.name.rsplit("/", 1)[-1]
    marker = data_dir / "jobs" / job_id / "replicas" / "workerpool0-0" / "started"
    wait_until_exists(marker)
    return created


def wait_until_exists(path: Path) -> None:
    from tests.waiting import wait_for

    wait_for(path.exists, message=f"{path} to exist")


def _service_notes(data_dir: Path, name: str) -> list[str]:
    return [entry.text for entry in read_replica_logs(data_dir, name.rsplit("/", 1)[-1], "service")]


@pytest.fixture()
def server(emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path) -> EmulatorProcess:
    return emulator_factory(tmp_path / "data", cancel_grace_seconds=0.5)


def test_a_crashed_replica_fails_the_job_with_its_signal(server: EmulatorProcess) -> None:
    client = grpc_client(server)
    created = _running(client, _job(), server.data_dir)

    assert server.crash_replica(created.name) == "workerpool0-0"

    ended = wait_until(client, created.name)
    assert ended.state == State.JOB_STATE_FAILED
    assert ended.error.code == 3
    assert ended.error.message == (
        "The replica workerpool0-0 was terminated by signal 9 (SIGKILL). Termination reason: Error.")


def test_restart_job_on_worker_restart_restarts_the_job_after_a_crash(
    server: EmulatorProcess,
) -> None:
    client = grpc_client(server)
    created = _running(client, _job({"restart_job_on_worker_restart": True}), server.data_dir)

    server.crash_replica(created.name, "workerpool0-0")

    ended = wait_until(client, created.name)
    assert ended.state == State.JOB_STATE_SUCCEEDED, ended.error.message
    assert any("restarted (retry 1 of 3)" in note and "was lost" in note
               for note in _service_notes(server.data_dir, created.name))


def test_a_preempted_spot_job_is_retried(server: EmulatorProcess) -> None:
    client = grpc_client(server)
    created = _running(client, _job({"strategy": "SPOT"}), server.data_dir)

    server.preempt(created.name)

    ended = wait_until(client, created.name)
    assert ended.state == State.JOB_STATE_SUCCEEDED, ended.error.message
    assert ended.start_time < ended.end_time
    assert any("Spot VMs were preempted" in note
               for note in _service_notes(server.data_dir, created.name))


def test_a_preempted_spot_job_without_retries_fails_with_a_clear_message(
    server: EmulatorProcess,
) -> None:
    client = grpc_client(server)
    created = _running(client, _job({"strategy": "SPOT", "disable_retries": True}),
                       server.data_dir)

    server.preempt(created.name)

    ended = wait_until(client, created.name)
    assert ended.state == State.JOB_STATE_FAILED
    assert ended.error.code == 14
    assert "Spot VMs were preempted" in ended.error.message


def test_job_faults_are_refused_where_they_cannot_apply(server: EmulatorProcess) -> None:
    client = grpc_client(server)
    standard = _running(client, _job(), server.data_dir)
    with pytest.raises(EmulatorError, match="Spot VMs"):
        server.preempt(standard.name)
    with pytest.raises(EmulatorError, match="no replica 'workerpool1-0'"):
        server.crash_replica(standard.name, "workerpool1-0")
    client.cancel_custom_job(name=standard.name)
    assert wait_until(client, standard.name).state == State.JOB_STATE_CANCELLED
    with pytest.raises(EmulatorError, match="not running"):
        server.crash_replica(standard.name)


def test_a_crashed_cloud_run_task_is_retried_as_max_retries_allows(
    server: EmulatorProcess,
) -> None:
    clients = run_clients(server, "grpc")
    command = [sys.executable, "-c", RESUMES]  # each task's working directory is kept
    outcomes = {}
    for retries in (1, 0):
        spec = create(clients, job(command, max_retries=retries))
        execution = clients.jobs.run_job(name=spec.name).metadata.name
        execution_id = execution.rsplit("/", 1)[-1]
        _, project, _, location = execution.split("/")[:4]
        wait_until_exists(server.data_dir / "executions" / project / location / execution_id
                          / "tasks" / "task-0" / "started")
        assert server.crash_task(execution) == 0
        outcomes[retries] = wait_completed(clients, execution)
    retried, final = outcomes[1], outcomes[0]
    assert (retried.succeeded_count, retried.retried_count) == (1, 1)
    assert final.failed_count == 1
    completed = next(c for c in final.conditions if c.type_ == "Completed")
    assert completed.state == run_v2.Condition.State.CONDITION_FAILED
    assert "signal" in completed.message or "exit" in completed.message
