"""A create is never sent twice blindly: faults injected into the emulator, results checked
with its request counters and the official client. Each test has a private emulator, so the
counters are its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from google.api_core.retry_async import AsyncRetry
from google.cloud import aiplatform_v1

from gcpjobs.clients.retry import RetryPolicy
from gcpjobs.clients.vertex import AsyncVertexClient, Transport, submission_filter
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import ApiError
from gcpjobs.states import JobState
from tests.clients.conftest import PARENT, official_client, python_job, request_counts, target_for
from tests.waiting import wait_for, wait_for_async

CREATE = "JobService.CreateCustomJob"
LIST = "JobService.ListCustomJobs"
QUICK = RetryPolicy(initial=0.01, maximum=0.05, deadline=10.0)
SUBMISSION = "0123456789abcdef0123456789abcdef"


def jobs_of_submission(server: EmulatorProcess, submission_id: str) -> list[str]:
    """Checked with the official client, not ours."""
    official = official_client(server)
    try:
        request = aiplatform_v1.ListCustomJobsRequest(
            parent=PARENT, filter=submission_filter(submission_id)
        )
        return [job.name for job in official.list_custom_jobs(request=request)]
    finally:
        official.transport.close()


@pytest.fixture()
def server(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    return emulator_factory()


def client_for(server: EmulatorProcess, transport: Transport, retry: RetryPolicy = QUICK) -> AsyncVertexClient:
    return AsyncVertexClient(target=target_for(server), transport=transport, retry=retry)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("count", [1, 2])
async def test_lost_reply_returns_the_job_the_server_made(
    server: EmulatorProcess, transport: Transport, count: int
) -> None:
    server.inject_fault(CREATE, "reply_lost", count=count)
    async with client_for(server, transport) as client:
        status = await client.create(python_job("pass"), submission_id=SUBMISSION)
        assert status.labels["gcpjobs-submission-id"] == SUBMISSION
        result = await client.wait(status.name, timeout=60)
    assert result.state is JobState.SUCCEEDED
    counts = request_counts(server)  # before the check below, which lists too
    assert jobs_of_submission(server, SUBMISSION) == [status.name]
    # Sent once; the lookup found the job, so it was not sent again.
    assert counts[CREATE] == 1 and counts[LIST] == 1


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("fault", ["unavailable", "resource_exhausted", "deadline_exceeded", "internal"])
async def test_refused_create_is_retried_into_exactly_one_job(
    server: EmulatorProcess, transport: Transport, fault: str
) -> None:
    server.inject_fault(CREATE, fault, count=2)
    async with client_for(server, transport) as client:
        status = await client.create(python_job("pass"), submission_id=SUBMISSION)
    counts = request_counts(server)  # before the check below, which lists too
    assert jobs_of_submission(server, SUBMISSION) == [status.name]
    assert counts[CREATE] == 3 and counts[LIST] == 2  # a lookup before each re-send


async def test_refused_then_lost_still_one_job(server: EmulatorProcess) -> None:
    server.inject_fault(CREATE, "unavailable", count=1)
    server.inject_fault(CREATE, "reply_lost", count=1)
    async with client_for(server, "grpc") as client:
        status = await client.create(python_job("pass"), submission_id=SUBMISSION)
    counts = request_counts(server)  # before the check below, which lists too
    assert jobs_of_submission(server, SUBMISSION) == [status.name]
    assert counts[CREATE] == 2 and counts[LIST] == 2


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_invalid_argument_fails_at_once(server: EmulatorProcess, transport: Transport) -> None:
    valid = python_job("pass")
    # model_construct skips the spec's own check, so the server is the one to refuse it.
    job = type(valid).model_construct(**{**dict(valid), "region": "Not_A_Region"})
    async with client_for(server, transport) as client:
        with pytest.raises(ApiError) as caught:
            await client.create(job)
    error = caught.value
    assert error.code == "INVALID_ARGUMENT" and error.method == "CreateCustomJob"
    assert str(error).startswith('INVALID_ARGUMENT (CreateCustomJob): Location "Not_A_Region"')
    assert "\n" not in str(error)
    counts = request_counts(server)
    assert counts[CREATE] == 1 and LIST not in counts


async def test_gives_up_at_the_deadline_without_a_job(server: EmulatorProcess) -> None:
    server.inject_fault(CREATE, "unavailable", count=1000)
    try:
        policy = RetryPolicy(initial=0.01, maximum=0.02, deadline=0.3)
        async with client_for(server, "grpc", policy) as client:
            with pytest.raises(ApiError) as caught:
                await client.create(python_job("pass"), submission_id=SUBMISSION)
    finally:
        server.clear_faults()
    message = str(caught.value)
    assert caught.value.code == "UNAVAILABLE" and "gave up after" in message
    assert SUBMISSION in message and "\n" not in message
    counts = request_counts(server)
    assert jobs_of_submission(server, SUBMISSION) == []
    assert counts[CREATE] >= 2 and counts[LIST] == counts[CREATE] - 1


async def test_failed_lookup_stops_instead_of_risking_a_second_job(server: EmulatorProcess) -> None:
    server.inject_fault(CREATE, "reply_lost", count=1)
    server.inject_fault(LIST, "unavailable", count=1000)
    try:
        policy = RetryPolicy(initial=0.01, maximum=0.02, deadline=0.3)
        async with client_for(server, "grpc", policy) as client:
            with pytest.raises(ApiError) as caught:
                await client.create(python_job("pass"), submission_id=SUBMISSION)
    finally:
        server.clear_faults()
    message = str(caught.value)
    assert f"gcpjobs-submission-id={SUBMISSION}" in message and "may exist" in message
    assert "\n" not in message
    assert request_counts(server)[CREATE] == 1
    assert len(jobs_of_submission(server, SUBMISSION)) == 1  # the one the lost reply made


async def test_transient_errors_on_reads_are_retried(server: EmulatorProcess) -> None:
    async with client_for(server, "grpc") as client:
        status = await client.create(python_job("pass"))
        server.inject_fault("JobService.GetCustomJob", "unavailable", count=2)
        assert (await client.get(status.name)).name == status.name
    assert request_counts(server)["JobService.GetCustomJob"] == 3


@dataclass(frozen=True)
class HoldRetriesUntil(RetryPolicy):
    """Before each retry, block until `ready()`: makes "the retry arrives after the job has
    ended" deterministic (it blocks the test's event loop, not the emulator)."""

    ready: Callable[[], bool] = lambda: True

    def async_retry(self, on_error: Callable[[Exception], Any] | None = None) -> AsyncRetry:
        def hold(error: Exception) -> None:
            wait_for(self.ready, timeout=30, message="the condition before the retry")
            if on_error is not None:
                on_error(error)

        return super().async_retry(hold)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_cancel_whose_reply_was_lost_succeeds_when_the_retry_finds_it_cancelled(
    server: EmulatorProcess, transport: Transport
) -> None:
    official = official_client(server)
    names: list[str] = []

    def cancelled() -> bool:
        state = official.get_custom_job(name=names[0]).state
        return bool(state == aiplatform_v1.JobState.JOB_STATE_CANCELLED)

    # The retried cancel meets a CANCELLED job and is refused FAILED_PRECONDITION; the client
    # knows its own first attempt did it.
    policy = HoldRetriesUntil(initial=0.01, maximum=0.02, ready=cancelled)
    async with client_for(server, transport, policy) as client:
        status = await client.create(python_job("import time; time.sleep(120)"))
        names.append(status.name)

        async def running() -> bool:
            return (await client.get(status.name)).state is JobState.RUNNING

        await wait_for_async(running, timeout=30, message="the job to run")
        server.inject_fault("JobService.CancelCustomJob", "reply_lost")
        await client.cancel(status.name)
        result = await client.wait(status.name, timeout=60)
    official.transport.close()
    assert result.state is JobState.CANCELLED
    assert request_counts(server)["JobService.CancelCustomJob"] == 2


async def test_cancelling_an_ended_job_is_refused_with_the_server_message(
    server: EmulatorProcess,
) -> None:
    async with client_for(server, "grpc") as client:
        result = await client.run(python_job("pass"))
        with pytest.raises(ApiError) as caught:
            await client.cancel(result.name)
    assert caught.value.code == "FAILED_PRECONDITION"
    assert "terminal state" in str(caught.value) and "\n" not in str(caught.value)
