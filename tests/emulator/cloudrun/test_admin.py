"""The admin routes for Cloud Run: reset forgets it all and stops executions; secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from gcpjobs.emulator.control import admin_call
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from tests.emulator.cloudrun.support import (
    PARENT,
    condition,
    create,
    job,
    run_clients,
    wait_completed,
)
from tests.emulator.support import process_gone, read_pids


def test_reset_stops_executions_and_forgets_cloud_run_records(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    server = emulator_factory()
    clients = run_clients(server, "grpc")
    created = create(clients, job(["sh", "-c", 'echo $$ > "$PIDS/root"; exec sleep 300'],
                                  env={"PIDS": str(tmp_path)}))
    execution = clients.jobs.run_job(name=created.name).metadata
    pid = read_pids(tmp_path, ["root"])["root"]
    assert server.stats()["executions"]["running"] == 1

    server.reset()

    assert process_gone(pid)
    assert server.stats()["executions"] == {"running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert list(clients.jobs.list_jobs(parent=PARENT)) == []
    with pytest.raises(exceptions.NotFound):
        clients.executions.get_execution(name=execution.name)
    assert not (server.data_dir / "executions").exists()
    create(clients, job(), created.name.rsplit("/", 1)[-1])  # the name is free again
    clients.close()


def test_bad_secret_requests_are_refused(emulator: EmulatorProcess) -> None:
    with pytest.raises(EmulatorError, match="send"):
        admin_call(emulator.rest_endpoint, "POST", "/_emulator/secrets", {"name": "x"},
                   data_dir=emulator.data_dir)
    with pytest.raises(EmulatorError, match="Invalid secret name"):
        emulator.add_secret("no/slashes", "v")


def test_held_executions_start_when_advanced_or_end_when_cancelled(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    server = emulator_factory(queued_seconds=None)  # hold every execution before its start
    clients = run_clients(server, "grpc")
    created = create(clients, job(task_count=2))
    first = clients.jobs.run_job(name=created.name).metadata.name
    second = clients.jobs.run_job(name=created.name).metadata.name

    held = clients.executions.get_execution(name=first)
    assert "start_time" not in held and "completion_time" not in held
    assert condition(held, "Started").state == run_v2.Condition.State.CONDITION_PENDING

    server.advance(first)
    assert wait_completed(clients, first).succeeded_count == 2
    cancelled = clients.executions.cancel_execution(name=second).result(timeout=10)
    assert cancelled.cancelled_count == 2 and "start_time" not in cancelled
    with pytest.raises(EmulatorError, match="not waiting to start"):
        server.advance(first)
    clients.close()
