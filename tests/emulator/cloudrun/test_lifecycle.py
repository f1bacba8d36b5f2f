"""Create → run → complete through the official Cloud Run v2 clients, over gRPC and REST."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import (
    PARENT,
    RunClients,
    completed,
    condition,
    create,
    job,
    job_id,
)

CState = run_v2.Condition.State
Reason = run_v2.Condition.ExecutionReason
Completion = run_v2.ExecutionReference.CompletionStatus
ENV_DUMP = (
    'import json, os, sys; json.dump({k: v for k, v in os.environ.items() if k.startswith(("CLOUD_RUN_", "GREETING"))}, '
    'open(os.path.join(sys.argv[1], os.environ["CLOUD_RUN_TASK_INDEX"] + "-" + os.environ["CLOUD_RUN_TASK_ATTEMPT"]), "w"))'
)


def test_a_job_runs_and_its_execution_succeeds(run: RunClients, tmp_path: Path) -> None:
    spec = job(["python", "-c", ENV_DUMP, str(tmp_path)], task_count=3, env={"GREETING": "hi"},
               labels={"team": "ml"}, template_labels={"step": "train"})
    name = job_id()
    created = create(run, spec, name)

    assert created.name == f"{PARENT}/jobs/{name}"
    assert uuid.UUID(created.uid).version == 4
    assert created.generation == 1 and created.observed_generation == 1
    assert created.terminal_condition.type_ == "Ready"
    assert created.terminal_condition.state == CState.CONDITION_SUCCEEDED
    assert created.etag and not created.reconciling
    assert created.template.template.max_retries == 0  # as sent; the default 3 applies when unset
    assert created.template.template.timeout.total_seconds() == 600  # the real default
    assert run.jobs.get_job(name=created.name) == created

    operation = run.jobs.run_job(name=created.name)
    started = operation.metadata
    assert re.fullmatch(rf"{re.escape(created.name)}/executions/{name}-[a-z0-9]{{5}}", started.name)
    assert started.job == name
    assert dict(started.labels) == {"team": "ml", "step": "train"}
    execution = operation.result(timeout=20)  # RunJob's operation completes with the execution

    assert completed(execution) and not execution.reconciling
    assert (execution.task_count, execution.succeeded_count, execution.failed_count) == (3, 3, 0)
    assert (execution.running_count, execution.retried_count, execution.cancelled_count) == (0, 0, 0)
    assert execution.create_time <= execution.start_time <= execution.completion_time
    assert condition(execution, "Completed").state == CState.CONDITION_SUCCEEDED
    assert condition(execution, "Started").state == CState.CONDITION_SUCCEEDED
    assert condition(execution, "ResourcesAvailable").state == CState.CONDITION_SUCCEEDED
    assert execution.template.containers[0].image == spec.template.template.containers[0].image
    envs = {path.name: json.loads(path.read_text()) for path in tmp_path.iterdir()}
    assert sorted(envs) == ["0-0", "1-0", "2-0"]
    assert envs["2-0"] == {
        "CLOUD_RUN_JOB": name, "CLOUD_RUN_EXECUTION": execution.name.rsplit("/", 1)[-1],
        "CLOUD_RUN_TASK_INDEX": "2", "CLOUD_RUN_TASK_ATTEMPT": "0", "CLOUD_RUN_TASK_COUNT": "3",
        "GREETING": "hi",
    }
    assert execution.log_uri.startswith("file://")

    latest = run.jobs.get_job(name=created.name)
    assert latest.execution_count == 1
    assert latest.latest_created_execution.name == execution.name
    assert latest.latest_created_execution.completion_status == Completion.EXECUTION_SUCCEEDED


def test_task_logs_say_images_are_not_pulled(run: RunClients, emulator: EmulatorProcess) -> None:
    created = create(run, job(["sh", "-c", "echo out-$CLOUD_RUN_TASK_INDEX"]))
    execution = run.jobs.run_job(name=created.name).result(timeout=20)
    parts = execution.name.split("/")
    logs = emulator.data_dir / "executions" / parts[1] / parts[3] / parts[7] / "logs"
    lines = [json.loads(line) for line in (logs / "task-0-attempt-0.jsonl").read_text().splitlines()]
    assert lines[0]["stream"] == "service" and "recorded, not pulled" in lines[0]["text"]
    assert {"stream": "stdout", "text": "out-0"}.items() <= lines[-1].items()


def test_failed_tasks_are_retried_then_fail_the_execution(run: RunClients, tmp_path: Path) -> None:
    # Task 0 fails on its first attempt only; task 1 always fails.
    script = (
        'echo $CLOUD_RUN_TASK_ATTEMPT >> "$OUT/$CLOUD_RUN_TASK_INDEX"; '
        '[ "$CLOUD_RUN_TASK_INDEX" = 0 ] && [ "$CLOUD_RUN_TASK_ATTEMPT" -ge 1 ] && exit 0; exit 3'
    )
    created = create(run, job(["sh", "-c", script], task_count=2, max_retries=2, env={"OUT": str(tmp_path)}))
    operation = run.jobs.run_job(name=created.name)
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        operation.result(timeout=20)  # a failed execution fails RunJob's operation
    assert "exit code of 3" in str(caught.value)

    execution = run.executions.get_execution(name=operation.metadata.name)
    assert (execution.succeeded_count, execution.failed_count, execution.retried_count) == (1, 1, 3)
    assert (tmp_path / "0").read_text().split() == ["0", "1"]
    assert (tmp_path / "1").read_text().split() == ["0", "1", "2"]
    completed_condition = condition(execution, "Completed")
    assert completed_condition.state == CState.CONDITION_FAILED
    assert completed_condition.execution_reason == Reason.NON_ZERO_EXIT_CODE
    assert completed_condition.message == (
        f"Task {execution.name.rsplit('/', 1)[-1]}-task1 failed with message: "
        "The container exited with an exit code of 3."
    )
    status = run.jobs.get_job(name=created.name).latest_created_execution.completion_status
    assert status == Completion.EXECUTION_FAILED


def test_overrides_change_args_env_task_count(run: RunClients, tmp_path: Path) -> None:
    created = create(run, job(["python", "-c", ENV_DUMP], args=["/nonexistent"], env={"GREETING": "a"}))
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[{"args": [str(tmp_path)], "env": [{"name": "GREETING", "value": "b"}]}],
        task_count=2,
        timeout=duration_pb2.Duration(seconds=30),
    )
    execution = run.jobs.run_job(request={"name": created.name, "overrides": overrides}).result(timeout=20)
    assert execution.task_count == 2 and execution.succeeded_count == 2
    assert execution.template.timeout.total_seconds() == 30
    assert json.loads((tmp_path / "1-0").read_text())["GREETING"] == "b"


def test_duplicate_job_id_is_already_exists(run: RunClients) -> None:
    name = job_id()
    create(run, job(), name)
    with pytest.raises(exceptions.Conflict) as caught:
        run.jobs.create_job(parent=PARENT, job=job(), job_id=name)
    assert caught.value.message.endswith(f"Resource '{name}' already exists.")


def test_unknown_job_and_execution_are_not_found(run: RunClients) -> None:
    with pytest.raises(exceptions.NotFound, match="of kind 'JOB'"):
        run.jobs.get_job(name=f"{PARENT}/jobs/nope")
    with pytest.raises(exceptions.NotFound, match="of kind 'EXECUTION'"):
        run.executions.get_execution(name=f"{PARENT}/jobs/nope/executions/nope-abcde")


def test_validate_only_creates_nothing(run: RunClients) -> None:
    name = job_id()
    response = run.jobs.create_job(
        request={"parent": PARENT, "job": job(), "job_id": name, "validate_only": True}
    ).result(timeout=10)
    assert response.name == f"{PARENT}/jobs/{name}"
    with pytest.raises(exceptions.NotFound):
        run.jobs.get_job(name=response.name)


def test_update_job_bumps_the_generation(run: RunClients) -> None:
    created = create(run, job(["true"], labels={"v": "1"}))
    changed = run_v2.Job(created)
    changed.labels = {"v": "2"}
    updated = run.jobs.update_job(job=changed).result(timeout=10)
    assert updated.generation == 2 and updated.observed_generation == 2
    assert updated.uid == created.uid and updated.create_time == created.create_time
    assert updated.update_time > created.update_time and updated.etag != created.etag
    assert dict(run.jobs.get_job(name=created.name).labels) == {"v": "2"}


def test_delete_job_removes_it_and_its_executions(run: RunClients) -> None:
    created = create(run, job())
    execution = run.jobs.run_job(name=created.name).result(timeout=20)
    deleted = run.jobs.delete_job(name=created.name).result(timeout=10)
    assert deleted.name == created.name
    with pytest.raises(exceptions.NotFound):
        run.jobs.get_job(name=created.name)
    with pytest.raises(exceptions.NotFound):
        run.executions.get_execution(name=execution.name)


def test_delete_execution(run: RunClients) -> None:
    created = create(run, job())
    execution = run.jobs.run_job(name=created.name).result(timeout=20)
    assert run.executions.delete_execution(name=execution.name).result(timeout=10).name == execution.name
    with pytest.raises(exceptions.NotFound):
        run.executions.get_execution(name=execution.name)


def test_operations_can_be_read_and_waited_on(run: RunClients) -> None:
    created = create(run, job(["sleep", "0.5"]))
    operation = run.jobs.run_job(name=created.name)
    name = operation.operation.name
    assert re.fullmatch(rf"{PARENT}/operations/[0-9a-f-]{{36}}", name)
    assert not run.jobs.get_operation(request={"name": name}).done

    # A short wait returns the operation still running; a long one returns it done.
    still = _wait(run, name, {"nanos": 1_000_000})
    assert not still.done
    done = _wait(run, name, {"seconds": 20})
    assert done.done
    finished = run_v2.Execution.deserialize(done.response.value)
    assert finished.succeeded_count == 1
    with pytest.raises(exceptions.NotFound):
        run.jobs.get_operation(request=operations_pb2.GetOperationRequest(name=f"{PARENT}/operations/nope"))


def _wait(run: RunClients, name: str, timeout: dict[str, int]) -> operations_pb2.Operation:
    answer: operations_pb2.Operation | bytes = run.jobs.wait_operation(
        request={"name": name, "timeout": timeout}
    )
    # google-cloud-run 0.16.2's gRPC transport declares no deserializer for WaitOperation, so
    # over gRPC the client hands back the serialized Operation.
    return operations_pb2.Operation.FromString(answer) if isinstance(answer, bytes) else answer


def test_stats_count_cloud_run_methods(run: RunClients, emulator: EmulatorProcess) -> None:
    before = emulator.stats()
    created = create(run, job())
    run.jobs.get_job(name=created.name)
    execution = run.jobs.run_job(name=created.name).result(timeout=20)
    run.executions.get_execution(name=execution.name)
    after = emulator.stats()
    for key in ("Jobs.CreateJob", "Jobs.GetJob", "Jobs.RunJob", "Executions.GetExecution"):
        assert after["requests"].get(key, 0) >= before["requests"].get(key, 0) + 1, key
    assert after["executions"]["succeeded"] >= before.get("executions", {}).get("succeeded", 0) + 1


def test_faults_apply_to_cloud_run_methods(grpc_run: RunClients, emulator: EmulatorProcess) -> None:
    created = create(grpc_run, job())
    emulator.inject_fault("Jobs.GetJob", "unavailable")
    try:
        with pytest.raises(exceptions.ServiceUnavailable):
            grpc_run.jobs.get_job(name=created.name, retry=None)
    finally:
        emulator.clear_faults()
    assert grpc_run.jobs.get_job(name=created.name).name == created.name
