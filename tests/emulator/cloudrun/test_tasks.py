"""The Cloud Run v2 Tasks service (GetTask, ListTasks) through the official TasksClient, over
gRPC and REST: one task per index, its attempts, exit codes and times, and its refusals."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from google.cloud.run_v2.services.tasks.transports import TasksGrpcTransport

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import RunClients, create, job, run_clients, wait_completed
from tests.waiting import wait_for

Reason = run_v2.Condition.ExecutionReason
CState = run_v2.Condition.State
# Task 1 fails every attempt with exit code 3; the others succeed.
TASK_ONE_FAILS = ["sh", "-c", 'test "$CLOUD_RUN_TASK_INDEX" != 1 || exit 3']


def tasks_client(server: EmulatorProcess, transport: str) -> run_v2.TasksClient:
    if transport == "grpc":
        channel = grpc.insecure_channel(server.grpc_address)
        return run_v2.TasksClient(transport=TasksGrpcTransport(channel=channel))
    return run_v2.TasksClient(transport="rest", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": server.rest_endpoint})


@pytest.fixture()
def tasks(run: RunClients, emulator: EmulatorProcess) -> Iterator[run_v2.TasksClient]:
    client = tasks_client(emulator, run.transport)
    yield client
    client.transport.close()


def completed(task: run_v2.Task) -> run_v2.Condition:
    return next(c for c in task.conditions if c.type_ == "Completed")


def test_each_task_of_an_execution_with_its_attempts_and_exit_code(
    run: RunClients, tasks: run_v2.TasksClient
) -> None:
    spec = job(TASK_ONE_FAILS, task_count=3, max_retries=1, labels={"team": "data"})
    execution = run.jobs.run_job(name=create(run, spec).name).metadata
    done = wait_completed(run, execution.name)
    execution_id = execution.name.rsplit("/", 1)[-1]

    listed = list(tasks.list_tasks(parent=execution.name))

    assert [t.name for t in listed] == [f"{execution.name}/tasks/{execution_id}-task{i}" for i in range(3)]
    assert [t.index for t in listed] == [0, 1, 2]
    for task in listed:
        assert task.job == done.job and task.execution == execution_id
        assert task.labels["team"] == "data" and task.max_retries == 1
        assert list(task.containers[0].command) == TASK_ONE_FAILS
        assert task.start_time <= task.completion_time and not task.reconciling
        assert task.uid and task.etag and task.log_uri.startswith("file://")
    failed, succeeded = listed[1], [listed[0], listed[2]]
    assert (failed.retried, failed.last_attempt_result.exit_code) == (1, 3)
    assert failed.last_attempt_result.status.code != 0
    assert completed(failed).state == CState.CONDITION_FAILED
    assert completed(failed).execution_reason == Reason.NON_ZERO_EXIT_CODE
    assert failed.log_uri.endswith("task-1-attempt-1.jsonl")
    for task in succeeded:
        assert task.retried == 0 and "last_attempt_result" in task
        assert task.last_attempt_result.exit_code == 0 and task.last_attempt_result.status.code == 0
        assert completed(task).state == CState.CONDITION_SUCCEEDED
    assert tasks.get_task(name=failed.name) == failed
    pages = list(tasks.list_tasks(request={"parent": execution.name, "page_size": 2}).pages)
    assert [[t.index for t in page.tasks] for page in pages] == [[0, 1], [2]]


def test_a_cancelled_execution_has_a_stopped_task_and_one_that_never_started(
    grpc_run: RunClients, emulator: EmulatorProcess
) -> None:
    tasks = tasks_client(emulator, "grpc")
    spec = job(["sleep", "300"], task_count=2, parallelism=1)
    execution = grpc_run.jobs.run_job(name=create(grpc_run, spec).name).metadata
    first = f"{execution.name}/tasks/{execution.name.rsplit('/', 1)[-1]}-task0"

    def running() -> run_v2.Task | None:
        task = tasks.get_task(name=first)
        return task if "start_time" in task else None

    started = wait_for(running, timeout=20, message="task 0 to start")
    assert started.reconciling and completed(started).state == CState.CONDITION_PENDING
    waiting = tasks.get_task(name=first[:-1] + "1")
    assert "start_time" not in waiting and completed(waiting).state == CState.CONDITION_PENDING

    grpc_run.executions.cancel_execution(name=execution.name).result(timeout=30)

    stopped, never = tasks.list_tasks(parent=execution.name)
    for task in (stopped, never):
        assert completed(task).execution_reason == Reason.CANCELLED
        assert "completion_time" in task and not task.reconciling
    assert "start_time" in stopped and stopped.last_attempt_result.term_signal != 0
    assert "start_time" not in never and "last_attempt_result" not in never
    tasks.transport.close()


def test_task_names_are_checked(run: RunClients, tasks: run_v2.TasksClient) -> None:
    execution = run.jobs.run_job(name=create(run, job()).name).metadata
    execution_id = execution.name.rsplit("/", 1)[-1]
    # BadRequest: InvalidArgument over gRPC, HTTP 400 over REST.
    with pytest.raises(exceptions.BadRequest):
        tasks.get_task(name=f"{execution.name}/tasks/task-0")
    for missing in (f"{execution_id}-task1", "other-job-abcde-task0"):  # past task_count; elsewhere
        with pytest.raises(exceptions.NotFound):
            tasks.get_task(name=f"{execution.name}/tasks/{missing}")
    with pytest.raises(exceptions.NotFound):
        tasks.list_tasks(parent=execution.name[:-5] + "zzzzz")
    with pytest.raises(exceptions.BadRequest):
        tasks.list_tasks(request={"parent": execution.name, "page_token": "forged"})


def test_tasks_survive_a_crash_and_the_one_it_interrupted_is_cancelled(
    emulator_process_factory: Callable[..., EmulatorProcess],
) -> None:
    first = emulator_process_factory()
    clients = run_clients(first, "grpc")
    tasks = tasks_client(first, "grpc")
    spec = job(["sh", "-c", 'test "$CLOUD_RUN_TASK_INDEX" = 0 || exec sleep 300'], task_count=2)
    execution = clients.jobs.run_job(name=create(clients, spec).name).metadata

    def both_started() -> list[run_v2.Task] | None:
        listed = list(tasks.list_tasks(parent=execution.name))
        return listed if "completion_time" in listed[0] and "start_time" in listed[1] else None

    before = wait_for(both_started, timeout=20, message="task 0 to end and task 1 to start")
    clients.close()
    tasks.transport.close()
    first.kill()

    second = emulator_process_factory(first.data_dir)
    tasks = tasks_client(second, "grpc")
    ended, interrupted = tasks.list_tasks(parent=execution.name)
    assert ended == before[0]
    assert interrupted.start_time == before[1].start_time and not interrupted.reconciling
    assert completed(interrupted).execution_reason == Reason.CANCELLED
    tasks.transport.close()
