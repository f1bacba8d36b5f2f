"""Cloud Run records survive restarts; executions a stopped or crashed emulator was running are
failed, their processes stopped, and the operations waiting on them finished."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import PARENT, condition, create, job, run_clients
from tests.emulator.support import process_gone, read_pids

SLEEPER = 'echo $$ > "$PIDS/root"; sleep 300 & echo $! > "$PIDS/child"; wait'


def test_records_survive_a_graceful_restart_and_running_executions_fail(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = emulator_factory(data_dir)
    clients = run_clients(first, "grpc")
    finished_job = create(clients, job(labels={"keep": "yes"}))
    finished = clients.jobs.run_job(name=finished_job.name).result(timeout=20)
    busy = create(clients, job(["sh", "-c", SLEEPER], env={"PIDS": str(tmp_path)}))
    running = clients.jobs.run_job(name=busy.name).metadata
    pids = read_pids(tmp_path, ["root", "child"])
    finished_job = clients.jobs.get_job(name=finished_job.name)
    clients.close()

    first.stop()  # SIGTERM: graceful

    assert all(process_gone(pid) for pid in pids.values())
    clients = run_clients(emulator_factory(data_dir), "grpc")
    assert clients.jobs.get_job(name=finished_job.name) == finished_job
    assert clients.executions.get_execution(name=finished.name) == finished
    stopped = clients.executions.get_execution(name=running.name)
    assert "completion_time" in stopped
    assert "emulator stopped while this execution was running" in condition(stopped, "Completed").message
    assert [j.name for j in clients.jobs.list_jobs(parent=PARENT)] == [busy.name, finished_job.name]
    clients.close()


def test_an_execution_running_during_a_crash_is_failed_and_stopped_after_restart(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = emulator_process_factory(data_dir)
    clients = run_clients(first, "grpc")
    busy = create(clients, job(["sh", "-c", SLEEPER], env={"PIDS": str(tmp_path)}))
    operation = clients.jobs.run_job(name=busy.name)
    pids = read_pids(tmp_path, ["root", "child"])
    clients.close()

    first.kill()  # SIGKILL: no chance to clean up

    assert not any(process_gone(pid) for pid in pids.values())  # left behind by the crash
    clients = run_clients(emulator_process_factory(data_dir), "grpc")
    assert all(process_gone(pid) for pid in pids.values())  # stopped by the next emulator
    failed = clients.executions.get_execution(name=operation.metadata.name)
    assert "emulator restarted while this execution was running" in condition(failed, "Completed").message
    assert failed.cancelled_count == 1
    finished = clients.jobs.get_operation(request={"name": operation.operation.name})
    assert finished.done and "emulator restarted" in finished.error.message
    clients.close()
