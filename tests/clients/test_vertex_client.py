"""AsyncVertexClient and VertexClient against the emulator over real sockets (gRPC and REST),
checked with the official client."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest
from google.cloud import aiplatform_v1

from gcpjobs.clients.retry import RetryPolicy
from gcpjobs.clients.target import Target
from gcpjobs.clients.vertex import AsyncVertexClient, Transport, VertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import ApiError, GcpJobsError, JobNotFoundError
from gcpjobs.states import JobState
from gcpjobs.watch.events import StateChange
from tests.clients.conftest import PARENT, python_job, target_for, unique_label
from tests.waiting import wait_for_async

JOB_NAME = re.compile(r"^projects/gcpjobs-local/locations/us-central1/customJobs/\d+$")
SLEEP_LONG = "import time; time.sleep(120)"


async def test_create_then_wait_succeeds(
    client: AsyncVertexClient, checker: aiplatform_v1.JobServiceClient
) -> None:
    created = await client.create(python_job("print('hello')"))
    assert JOB_NAME.match(created.name)
    assert created.labels["gcpjobs-submission-id"] and created.labels["gcpjobs-kind"] == "vertex"
    changes: list[StateChange] = []
    result = await client.wait(created.name, on_change=changes.append, timeout=60)
    assert result.state is JobState.SUCCEEDED and result.succeeded and result.exit_code == 0
    assert result.name == created.name and result.error is None
    assert result.run_duration is not None and result.run_duration.total_seconds() >= 0
    assert result.queued_duration is not None
    assert changes[-1].current is JobState.SUCCEEDED and changes[0].previous is None
    official = checker.get_custom_job(name=created.name)
    assert official.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED
    assert result.status.end_time == official.end_time


async def test_failed_job_carries_the_error(client: AsyncVertexClient) -> None:
    result = await client.run(python_job("import sys; sys.exit(3)"))
    assert result.state is JobState.FAILED and not result.succeeded and result.exit_code == 1
    assert result.error is not None and result.error.code != 0
    assert "non-zero status of 3" in result.error.message


async def test_cancel_while_running(client: AsyncVertexClient) -> None:
    created = await client.create(python_job(SLEEP_LONG))

    async def running() -> bool:
        return (await client.get(created.name)).state is JobState.RUNNING

    await wait_for_async(running, timeout=30, message="the job to run")
    await client.cancel(created.job_id)  # a bare id is resolved in the client's project/region
    result = await client.wait(created.name, timeout=60)
    assert result.state is JobState.CANCELLED
    assert result.error is not None and result.error.code == 1  # google.rpc.Code.CANCELLED


async def test_list_with_label_filter(
    client: AsyncVertexClient, checker: aiplatform_v1.JobServiceClient
) -> None:
    batch, other = unique_label(), unique_label()
    mine = {(await client.create(python_job("pass", labels={"batch": batch}))).name for _ in range(3)}
    await client.create(python_job("pass", labels={"batch": other}))
    found = [status async for status in client.list(filter=f"labels.batch={batch}", page_size=2)]
    assert {status.name for status in found} == mine and len(found) == 3  # across two pages
    assert all(status.labels["batch"] == batch for status in found)
    official = checker.list_custom_jobs(
        request=aiplatform_v1.ListCustomJobsRequest(parent=PARENT, filter=f"labels.batch={batch}")
    )
    assert {job.name for job in official} == mine


async def test_get_unknown_job_is_a_one_line_not_found(client: AsyncVertexClient) -> None:
    with pytest.raises(JobNotFoundError) as caught:
        await client.get("123456789")
    message = str(caught.value)
    assert message.startswith("NOT_FOUND (GetCustomJob): ")
    assert "projects/gcpjobs-local/locations/us-central1/customJobs/123456789" in message
    assert "\n" not in message


async def test_delete_ended_job(client: AsyncVertexClient) -> None:
    result = await client.run(python_job("pass"))
    await client.delete(result.name)
    with pytest.raises(JobNotFoundError):
        await client.get(result.name)


def test_sync_facade_run_list_get(sync_client: VertexClient) -> None:
    batch = unique_label()
    changes: list[StateChange] = []
    result = sync_client.run(python_job("print(1)", labels={"batch": batch}), on_change=changes.append)
    assert result.state is JobState.SUCCEEDED
    # run() reports the create's reply first: the whole path from QUEUED.
    assert changes[0].current is JobState.QUEUED and changes[-1].current is JobState.SUCCEEDED
    assert [s.name for s in sync_client.list(filter=f"labels.batch={batch}")] == [result.name]
    assert [s.name for s in sync_client.iter_list(filter=f"labels.batch={batch}")] == [result.name]
    assert sync_client.get(result.name).state is JobState.SUCCEEDED
    with pytest.raises(JobNotFoundError):
        sync_client.get("1")


def test_sync_facade_cancel(sync_client: VertexClient) -> None:
    created = sync_client.create(python_job(SLEEP_LONG))
    sync_client.cancel(created.name)
    result = sync_client.wait(created.name, timeout=60)
    assert result.state is JobState.CANCELLED


async def test_sync_facade_works_inside_a_running_event_loop(emulator: EmulatorProcess) -> None:
    """As in Jupyter, where a loop is already running in the caller's thread."""
    asyncio.get_running_loop()
    with VertexClient(target=target_for(emulator)) as vertex:
        assert vertex.run(python_job("pass")).state is JobState.SUCCEEDED


def test_async_client_survives_successive_event_loops(emulator: EmulatorProcess) -> None:
    """The CLI calls asyncio.run more than once with one client."""
    vertex = AsyncVertexClient(target=target_for(emulator))
    created = asyncio.run(vertex.create(python_job("pass")))
    assert asyncio.run(vertex.get(created.name)).name == created.name

    async def wait_and_close() -> JobState:
        async with vertex:
            return (await vertex.wait(created.name, timeout=60)).state

    assert asyncio.run(wait_and_close()) is JobState.SUCCEEDED


def test_closed_sync_client_says_so(emulator: EmulatorProcess) -> None:
    vertex = VertexClient(target=target_for(emulator))
    vertex.close()
    vertex.close()  # twice is fine
    with pytest.raises(GcpJobsError, match="closed"):
        vertex.get("1")


def test_resource_names(emulator: EmulatorProcess) -> None:
    vertex = AsyncVertexClient(target=target_for(emulator), region="europe-west4")
    full = "projects/p/locations/us-east1/customJobs/9"
    assert vertex.resource_name("42") == "projects/gcpjobs-local/locations/europe-west4/customJobs/42"
    assert vertex.resource_name("42", "asia-east1").endswith("/locations/asia-east1/customJobs/42")
    assert vertex.resource_name(full) == full
    for bad in ("projects/p/customJobs/9", "a/b", ""):
        with pytest.raises(GcpJobsError) as caught:
            vertex.resource_name(bad)
        assert "\n" not in str(caught.value)


async def test_unreachable_emulator_is_unavailable_with_a_hint(transport: Transport) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = Target(kind="emulator", project="gcpjobs-local", grpc_address=f"127.0.0.1:{port}",
                    rest_endpoint=f"http://127.0.0.1:{port}")
    quick = RetryPolicy(initial=0.01, maximum=0.02, deadline=0.2, call_timeout=2.0)
    async with AsyncVertexClient(target=target, transport=transport, retry=quick) as vertex:
        with pytest.raises(ApiError) as caught:
            await vertex.get("1")
    message = str(caught.value)
    assert caught.value.code == "UNAVAILABLE" and f"127.0.0.1:{port} running?" in message
    assert "\n" not in message
