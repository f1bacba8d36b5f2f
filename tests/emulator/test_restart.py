"""Records survive restarts; jobs a stopped or crashed emulator was running end FAILED, and
the processes a crashed emulator left behind are stopped by the next one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.support import PARENT, State, custom_job, process_gone, read_pids, wait_until

SLEEPER = 'echo $$ > "$PIDS/root"; sleep 300 & echo $! > "$PIDS/child"; wait'
MANY = 200


def test_jobs_survive_a_graceful_restart_and_running_ones_fail(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = emulator_factory(data_dir)
    client = grpc_client(first)
    finished = client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["true"], labels={"keep": "yes"})
    )
    finished = wait_until(client, finished.name)
    running = client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["sh", "-c", SLEEPER], env={"PIDS": str(tmp_path)})
    )
    pids = read_pids(tmp_path, ["root", "child"])

    first.stop()  # SIGTERM: graceful

    assert all(process_gone(pid) for pid in pids.values())
    assert not (data_dir / "emulator.json").exists()
    second = emulator_factory(data_dir)
    client = grpc_client(second)
    listed = {job.name: job for job in client.list_custom_jobs(parent=PARENT)}
    assert set(listed) == {finished.name, running.name}
    assert listed[finished.name] == finished  # unchanged, times and labels included
    stopped = listed[running.name]
    assert stopped.state == State.JOB_STATE_FAILED
    assert stopped.error.code == 13
    assert "emulator stopped while this job was running" in stopped.error.message


def test_a_graceful_stop_with_many_running_jobs_stops_every_process_and_fails_every_job(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    """Every job's tree is killed at once, and finding the trees reads the host's process
    table: one reading per job (each as long as the table) had taken longer than the stop's
    30 s for its jobs at a few hundred jobs, and left their processes running."""
    data_dir = tmp_path / "data"
    first = emulator_process_factory(data_dir)
    client = grpc_client(first)
    folders = [tmp_path / f"job{index}" for index in range(MANY)]
    running = []
    for folder in folders:
        folder.mkdir()
        running.append(client.create_custom_job(
            parent=PARENT, custom_job=custom_job(["sh", "-c", SLEEPER], env={"PIDS": str(folder)})
        ).name)
    pids = [pid for folder in folders
            for pid in read_pids(folder, ["root", "child"], timeout=60).values()]

    first.stop(timeout=120)  # SIGTERM: graceful

    assert "gcpjobs emulator stopped" in first.output  # by itself, not SIGKILLed
    left = [pid for pid in pids if not process_gone(pid)]
    assert not left, f"{len(left)} of {len(pids)} job processes outlived the emulator"
    second = emulator_process_factory(data_dir)
    listed = {job.name: job for job in grpc_client(second).list_custom_jobs(parent=PARENT)}
    assert set(listed) == set(running)
    assert {listed[name].state for name in running} == {State.JOB_STATE_FAILED}
    assert all("emulator stopped while this job was running" in listed[name].error.message
               for name in running)


def test_a_job_running_during_a_crash_is_failed_and_stopped_after_restart(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = emulator_process_factory(data_dir)
    client = grpc_client(first)
    running = client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["sh", "-c", SLEEPER], env={"PIDS": str(tmp_path)})
    )
    wait_until(client, running.name, {State.JOB_STATE_RUNNING})
    pids = read_pids(tmp_path, ["root", "child"])

    first.kill()  # SIGKILL: no chance to clean up

    assert not any(process_gone(pid) for pid in pids.values())  # left behind by the crash
    second = emulator_process_factory(data_dir)
    client = grpc_client(second)
    after = client.get_custom_job(name=running.name)
    assert after.state == State.JOB_STATE_FAILED
    assert after.error.code == 13
    assert after.error.message.startswith("The gcpjobs emulator restarted while this job was running")
    assert after.end_time >= after.start_time
    assert all(process_gone(pid) for pid in pids.values())

    # The restarted emulator runs new jobs as usual.
    fresh = client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    assert wait_until(client, fresh.name).state == State.JOB_STATE_SUCCEEDED
