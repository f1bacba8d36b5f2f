"""The Cloud Run client against the emulator over a real socket (gRPC and REST), its work
checked with the OFFICIAL `run_v2` clients and the emulator's request counters."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.api_core import exceptions as core_exceptions
from google.cloud import run_v2
from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

from gcpjobs.clients.cloudrun import AsyncCloudRunClient, CloudRunClient, job_name_of
from gcpjobs.clients.retry import RetryPolicy
from gcpjobs.clients.vertex import Transport
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import ApiError, GcpJobsError, JobNotFoundError
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.states import JobState
from gcpjobs.watch.events import StateChange
from tests.clients.conftest import request_counts, target_for, unique_label
from tests.waiting import wait_for_async

QUICK = RetryPolicy(initial=0.01, maximum=0.05, deadline=10.0)


def python_job(code: str, **fields: object) -> CloudRunJob:
    """A job whose tasks run `code` with this interpreter (the emulator runs host processes)."""
    fields.setdefault("name", "client-test")
    fields.setdefault("labels", {"suite": unique_label()})
    return CloudRunJob(image="python:3.11", command=[sys.executable, "-c", code], **fields)


@pytest.fixture(params=["grpc", "rest"])
def transport(request: pytest.FixtureRequest) -> Transport:
    value: Transport = request.param
    return value


def client_for(server: EmulatorProcess, transport: Transport = "grpc") -> AsyncCloudRunClient:
    return AsyncCloudRunClient(target=target_for(server), transport=transport, retry=QUICK)


@pytest.fixture()
def jobs(emulator: EmulatorProcess) -> Iterator[run_v2.JobsClient]:
    channel = grpc.insecure_channel(emulator.grpc_address)
    official = run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel))
    yield official
    official.transport.close()


def executions_of(server: EmulatorProcess, job_name: str) -> list[run_v2.Execution]:
    """Checked with the official client, not ours."""
    channel = grpc.insecure_channel(server.grpc_address)
    official = run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))
    try:
        return list(official.list_executions(parent=job_name))
    finally:
        official.transport.close()


def job_exists(jobs: run_v2.JobsClient, name: str) -> bool:
    try:
        jobs.get_job(name=name)
    except core_exceptions.NotFound:
        return False
    return True


async def test_run_succeeds_reports_tasks_and_deletes_the_job(
    emulator: EmulatorProcess, transport: Transport, jobs: run_v2.JobsClient
) -> None:
    code = "import os; print('task', os.environ['CLOUD_RUN_TASK_INDEX'])"
    changes: list[StateChange] = []
    async with client_for(emulator, transport) as client:
        result = await client.run(python_job(code, task_count=3), on_change=changes.append)
    assert result.state is JobState.SUCCEEDED, result.error
    assert result.status.kind == "cloud-run" and result.status.tasks is not None
    assert result.status.tasks.succeeded == 3 and result.status.tasks.task_count == 3
    assert result.run_duration is not None and result.status.end_time is not None
    # Every change once, in the state machine's order, ending where the result does.
    seen = [change.current for change in changes]
    order = [JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED]
    assert seen == [state for state in order if state in seen] and seen[-1] is JobState.SUCCEEDED
    # keep_job is false: the Job resource is gone once its execution has ended.
    assert not job_exists(jobs, job_name_of(result.name))


async def test_keep_job_reuses_the_job_and_each_run_is_its_own_execution(
    emulator: EmulatorProcess, jobs: run_v2.JobsClient
) -> None:
    job = python_job("print('kept')", name=f"kept-{unique_label()[:8]}", keep_job=True)
    async with client_for(emulator) as client:
        first = await client.run(job)
        second = await client.run(job.with_overrides(args=["--again"]))
    assert first.succeeded and second.succeeded
    job_name = job_name_of(first.name)
    assert job_name == job_name_of(second.name) and first.name != second.name
    kept = jobs.get_job(name=job_name)
    assert kept.execution_count == 2
    assert list(kept.template.template.containers[0].args) == ["--again"]  # updated
    submission = "gcpjobs-submission-id"
    labels = {e.name: e.labels[submission] for e in executions_of(emulator, job_name)}
    assert len(set(labels.values())) == 2  # each execution carries its own submission


async def test_a_failing_task_is_retried_then_fails_the_execution(
    emulator: EmulatorProcess, transport: Transport
) -> None:
    code = "import os, sys; sys.exit(3 if os.environ['CLOUD_RUN_TASK_INDEX'] == '1' else 0)"
    async with client_for(emulator, transport) as client:
        result = await client.run(python_job(code, task_count=2, max_retries=2))
    assert result.state is JobState.FAILED and result.error is not None
    tasks = result.status.tasks
    assert tasks is not None and (tasks.succeeded, tasks.failed, tasks.retried) == (1, 1, 2)
    assert "\n" not in result.error.message and result.error.message


async def test_cancel_stops_the_execution(emulator: EmulatorProcess, transport: Transport) -> None:
    async with client_for(emulator, transport) as client:
        started = await client.create(python_job("import time; time.sleep(60)"))
        await wait_for_async(
            lambda: _state_is(client, started.name, JobState.RUNNING), timeout=30,
            message="the execution to run",
        )
        await client.cancel(started.name)
        result = await client.wait(started.name, timeout=30, delete_job=True)
    assert result.state is JobState.CANCELLED
    assert result.error is not None and result.error.code == 1


async def _state_is(client: AsyncCloudRunClient, name: str, state: JobState) -> bool:
    return (await client.get(name)).state is state


async def test_a_bare_execution_id_is_enough(emulator: EmulatorProcess) -> None:
    async with client_for(emulator) as client:
        started = await client.create(python_job("pass", keep_job=True, name=f"bare-{unique_label()[:8]}"))
        result = await client.wait(started.display_name)
    assert result.name == started.name and result.succeeded


async def test_unknown_execution_is_a_one_line_not_found(emulator: EmulatorProcess) -> None:
    async with client_for(emulator) as client:
        with pytest.raises(JobNotFoundError) as caught:
            await client.get("no-such-job-abcde")
    assert "\n" not in str(caught.value) and "no-such-job" in str(caught.value)


@pytest.mark.parametrize("name", ["", "nodash", "projects/p/locations/l/jobs/j", "a/b-c"])
def test_malformed_execution_names_are_refused(emulator: EmulatorProcess, name: str) -> None:
    client = client_for(emulator)
    with pytest.raises(GcpJobsError, match="execution"):
        client.resource_name(name)


def test_sync_client_runs_a_job(emulator: EmulatorProcess) -> None:
    with CloudRunClient(target=target_for(emulator), retry=QUICK) as client:
        result = client.run(python_job("print('sync')"))
        listed = client.list(job=job_name_of(result.name).rsplit("/", 1)[-1])
    assert result.succeeded
    assert listed == []  # the job, and its executions with it, were deleted


# ------------------------------------------------------------------------- no duplicates

RUN = "Jobs.RunJob"
CREATE = "Jobs.CreateJob"
LIST_EXECUTIONS = "Executions.ListExecutions"


@pytest.fixture()
def server(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    return emulator_factory()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_a_lost_run_reply_starts_exactly_one_execution(
    server: EmulatorProcess, transport: Transport
) -> None:
    server.inject_fault(RUN, "reply_lost", count=1)
    job = python_job("pass", keep_job=True, name="lost-reply")
    async with client_for(server, transport) as client:
        started = await client.create(job)
        result = await client.wait(started.name, timeout=60)
    assert result.succeeded
    counts = request_counts(server)
    assert counts[RUN] == 1 and counts[LIST_EXECUTIONS] >= 1
    assert [e.name for e in executions_of(server, job_name_of(started.name))] == [started.name]


async def test_refused_runs_are_retried_into_one_execution(server: EmulatorProcess) -> None:
    server.inject_fault(RUN, "unavailable", count=2)
    job = python_job("pass", keep_job=True, name="refused")
    async with client_for(server) as client:
        started = await client.create(job)
    counts = request_counts(server)
    assert counts[RUN] == 3 and counts[LIST_EXECUTIONS] == 2  # a lookup before each re-send
    assert len(executions_of(server, job_name_of(started.name))) == 1


async def test_a_lost_create_reply_makes_exactly_one_job(server: EmulatorProcess) -> None:
    server.inject_fault(CREATE, "reply_lost", count=1)
    async with client_for(server) as client:
        started = await client.create(python_job("pass", keep_job=True, name="lost-create"))
    counts = request_counts(server)
    assert counts[CREATE] == 1 and counts[RUN] == 1
    assert started.state in (JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED)


async def test_an_invalid_job_fails_at_once_with_the_server_message(server: EmulatorProcess) -> None:
    valid = python_job("pass")
    # model_construct skips the spec's own checks, so the server is the one to refuse it.
    job = type(valid).model_construct(**{**dict(valid), "parallelism": 5, "task_count": 2})
    async with client_for(server) as client:
        with pytest.raises(ApiError) as caught:
            await client.create(job)
    assert caught.value.code == "INVALID_ARGUMENT" and "\n" not in str(caught.value)
    assert request_counts(server)[CREATE] == 1

