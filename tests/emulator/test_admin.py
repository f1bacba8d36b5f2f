"""The admin routes: request counters, one-shot faults, reset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from gcpjobs.emulator.control import admin_call
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from tests.conftest import client_for, grpc_client
from tests.emulator.support import (
    PARENT,
    State,
    custom_job,
    process_gone,
    read_pids,
    unique,
    wait_until,
)

GET = "JobService.GetCustomJob"
CREATE = "JobService.CreateCustomJob"


def test_requests_are_counted_per_method_whatever_the_transport(
    emulator: EmulatorProcess,
    grpc_job_client: aiplatform_v1.JobServiceClient,
    rest_job_client: aiplatform_v1.JobServiceClient,
) -> None:
    created = grpc_job_client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    wait_until(grpc_job_client, created.name)
    before = emulator.stats()["requests"]

    for _ in range(3):
        grpc_job_client.get_custom_job(name=created.name)
    for _ in range(2):
        rest_job_client.get_custom_job(name=created.name)
    first_page = next(iter(rest_job_client.list_custom_jobs(
        request={"parent": PARENT, "page_size": 1}).pages))
    assert len(first_page.custom_jobs) == 1
    with pytest.raises(exceptions.NotFound):
        grpc_job_client.get_custom_job(name=f"{PARENT}/customJobs/1234567890123456789")

    after = emulator.stats()
    delta = {key: after["requests"].get(key, 0) - before.get(key, 0) for key in after["requests"]}
    assert delta[GET] == 6  # refused calls count too
    assert delta["JobService.ListCustomJobs"] == 1
    assert delta[CREATE] == 0
    assert set(after["jobs"]) >= {"queued", "pending", "running", "succeeded", "failed", "cancelled"}
    assert after["jobs"]["succeeded"] >= 1


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_a_lost_reply_still_creates_the_job(emulator: EmulatorProcess, transport: str) -> None:
    client = client_for(emulator, transport)
    marker = unique()
    emulator.inject_fault(CREATE, "reply_lost")

    with pytest.raises(exceptions.ServiceUnavailable):
        client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"], labels={"marker": marker}),
                                 retry=None)

    jobs = list(client.list_custom_jobs(request={"parent": PARENT, "filter": f"labels.marker={marker}"}))
    assert len(jobs) == 1  # the client saw UNAVAILABLE, yet the job exists
    assert wait_until(client, jobs[0].name).state == State.JOB_STATE_SUCCEEDED
    # The fault was one-shot: the next create answers normally.
    client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"], labels={"marker": marker}))
    client.transport.close()


@pytest.mark.parametrize(
    ("fault", "grpc_error", "rest_error"),
    [
        ("unavailable", exceptions.ServiceUnavailable, exceptions.ServiceUnavailable),
        ("resource_exhausted", exceptions.ResourceExhausted, exceptions.TooManyRequests),
        ("deadline_exceeded", exceptions.DeadlineExceeded, exceptions.GatewayTimeout),
        ("internal", exceptions.InternalServerError, exceptions.InternalServerError),
    ],
)
def test_refusing_faults_do_no_work_and_are_consumed_in_order(
    emulator: EmulatorProcess,
    fault: str,
    grpc_error: type[Exception],
    rest_error: type[Exception],
) -> None:
    marker = unique()
    job = custom_job(["true"], labels={"marker": marker})
    emulator.inject_fault(CREATE, fault, count=2)
    grpc, rest = client_for(emulator, "grpc"), client_for(emulator, "rest")
    try:
        with pytest.raises(grpc_error):
            grpc.create_custom_job(parent=PARENT, custom_job=job, retry=None)
        with pytest.raises(rest_error):
            rest.create_custom_job(parent=PARENT, custom_job=job, retry=None)
        filtered = {"parent": PARENT, "filter": f"labels.marker={marker}"}
        assert list(grpc.list_custom_jobs(request=filtered)) == []
        grpc.create_custom_job(parent=PARENT, custom_job=job, retry=None)
        assert len(list(grpc.list_custom_jobs(request=filtered))) == 1
    finally:
        emulator.clear_faults()
        grpc.transport.close()
        rest.transport.close()


def test_bad_fault_requests_are_refused(emulator: EmulatorProcess) -> None:
    with pytest.raises(EmulatorError, match="unknown fault 'explode'"):
        emulator.inject_fault(CREATE, "explode")
    with pytest.raises(EmulatorError, match=r"Service\.Method"):
        emulator.inject_fault("CreateCustomJob", "unavailable")
    with pytest.raises(EmulatorError, match="at least 1"):
        emulator.inject_fault(CREATE, "unavailable", count=0)
    with pytest.raises(EmulatorError, match="no admin route"):
        admin_call(emulator.rest_endpoint, "GET", "/_emulator/nothing-here",
                   data_dir=emulator.data_dir)


def test_reset_stops_jobs_and_forgets_everything(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    server = emulator_factory()
    client = grpc_client(server)
    done = client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    wait_until(client, done.name)
    running = client.create_custom_job(
        parent=PARENT,
        custom_job=custom_job(["sh", "-c", 'echo $$ > "$PIDS/root"; exec sleep 300'],
                              env={"PIDS": str(tmp_path)}),
    )
    pid = read_pids(tmp_path, ["root"])["root"]

    server.reset()

    assert server.stats() == {
        "requests": {},
        "jobs": {"queued": 0, "pending": 0, "running": 0, "cancelling": 0,
                 "succeeded": 0, "failed": 0, "cancelled": 0},
        "executions": {"running": 0, "succeeded": 0, "failed": 0, "cancelled": 0},
    }
    assert process_gone(pid)
    assert list(client.list_custom_jobs(parent=PARENT)) == []
    with pytest.raises(exceptions.NotFound):
        client.get_custom_job(name=running.name)
    assert not (server.data_dir / "jobs").exists()
