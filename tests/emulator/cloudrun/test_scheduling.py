"""How tasks run: parallelism, the per-attempt timeout, cancellation (no process left behind)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import RunClients, condition, create, job, wait_completed
from tests.emulator.support import process_gone, processes_in, read_pids
from tests.waiting import wait_for

CState = run_v2.Condition.State
Reason = run_v2.Condition.ExecutionReason
# Each task records when it started and ended, by its own clock.
INTERVAL = (
    'import os, sys, time; start = time.time(); time.sleep(0.3); '
    'open(os.path.join(sys.argv[1], os.environ["CLOUD_RUN_TASK_INDEX"]), "w")'
    '.write(f"{start} {time.time()}")'
)


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in events:  # an end sorts before a start at the same instant
        running += change
        most = max(most, running)
    return most


def test_parallelism_bounds_tasks_running_at_once(grpc_run: RunClients, tmp_path: Path) -> None:
    created = create(grpc_run, job(["python", "-c", INTERVAL, str(tmp_path)], task_count=6, parallelism=2))
    execution = grpc_run.jobs.run_job(name=created.name).result(timeout=30)
    assert execution.succeeded_count == 6 and execution.parallelism == 2
    intervals = [tuple(map(float, path.read_text().split())) for path in tmp_path.iterdir()]
    assert len(intervals) == 6
    assert _most_at_once(intervals) == 2  # never more than 2, and 2 did overlap


def test_zero_parallelism_runs_every_task_at_once(grpc_run: RunClients, tmp_path: Path) -> None:
    created = create(grpc_run, job(["python", "-c", INTERVAL, str(tmp_path)], task_count=3))
    grpc_run.jobs.run_job(name=created.name).result(timeout=30)
    intervals = [tuple(map(float, path.read_text().split())) for path in tmp_path.iterdir()]
    assert _most_at_once(intervals) == 3


def test_the_task_timeout_stops_an_attempt_and_fails_the_task(
    grpc_run: RunClients, tmp_path: Path
) -> None:
    script = 'echo $$ > "$PIDS/root"; sleep 300 & echo $! > "$PIDS/child"; wait'
    created = create(grpc_run, job(["sh", "-c", script], timeout=timedelta(seconds=1),
                                   env={"PIDS": str(tmp_path)}))
    operation = grpc_run.jobs.run_job(name=created.name)
    pids = read_pids(tmp_path, ["root", "child"])
    execution = wait_completed(grpc_run, operation.metadata.name)

    assert execution.failed_count == 1 and execution.succeeded_count == 0
    completed = condition(execution, "Completed")
    assert completed.state == CState.CONDITION_FAILED
    assert completed.message.endswith("failed with message: The configured timeout was reached.")
    assert all(process_gone(pid) for pid in pids.values())


def test_cancel_stops_every_process_and_counts_cancelled_tasks(
    grpc_run: RunClients, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    script = (
        'echo $$ > "$PIDS/root-$CLOUD_RUN_TASK_INDEX"; '
        'sleep 300 & echo $! > "$PIDS/child-$CLOUD_RUN_TASK_INDEX"; wait'
    )
    created = create(grpc_run, job(["sh", "-c", script], task_count=3, parallelism=2,
                                   env={"PIDS": str(tmp_path)}))
    run_operation = grpc_run.jobs.run_job(name=created.name)
    name = run_operation.metadata.name
    pids = read_pids(tmp_path, ["root-0", "child-0", "root-1", "child-1"])
    running = wait_for(lambda: (e := grpc_run.executions.get_execution(name=name)).running_count == 2 and e)
    assert running.reconciling and condition(running, "Started").state == CState.CONDITION_SUCCEEDED

    cancelled = grpc_run.executions.cancel_execution(name=name).result(timeout=20)

    assert cancelled.cancelled_count == 3  # two stopped while running, one never started
    assert (cancelled.running_count, cancelled.succeeded_count, cancelled.failed_count) == (0, 0, 0)
    completed = condition(cancelled, "Completed")
    assert completed.execution_reason == Reason.CANCELLED
    assert all(process_gone(pid) for pid in pids.values())  # checked with psutil
    parts = name.split("/")
    assert processes_in(emulator.data_dir / "executions" / parts[1] / parts[3] / parts[7]) == []
    # RunJob's operation ends too: with a CANCELLED error, since the run did not succeed.
    finished = grpc_run.jobs.get_operation(request={"name": run_operation.operation.name})
    assert finished.done and finished.error.code == 1
    status = grpc_run.jobs.get_job(name=created.name).latest_created_execution.completion_status
    assert status == run_v2.ExecutionReference.CompletionStatus.EXECUTION_CANCELLED


def test_cancelling_a_completed_execution_or_deleting_a_running_one_is_refused(
    grpc_run: RunClients,
) -> None:
    done = grpc_run.jobs.run_job(name=create(grpc_run, job()).name).result(timeout=20)
    with pytest.raises(exceptions.FailedPrecondition, match="already completed"):
        grpc_run.executions.cancel_execution(name=done.name)

    busy = create(grpc_run, job(["sleep", "300"]))
    name = grpc_run.jobs.run_job(name=busy.name).metadata.name
    try:
        with pytest.raises(exceptions.FailedPrecondition, match="still running"):
            grpc_run.executions.delete_execution(name=name)
        with pytest.raises(exceptions.FailedPrecondition, match="running executions"):
            grpc_run.jobs.delete_job(name=busy.name)
    finally:
        grpc_run.executions.cancel_execution(name=name).result(timeout=20)
