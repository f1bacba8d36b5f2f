"""Fault rules: per-method rates drawn from a seeded RNG, and added latency, seen through the
official clients over a real socket (both transports)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from tests.conftest import TRANSPORTS, client_for

PARENT = "projects/gcpjobs-local/locations/us-central1"
GET_JOB = "JobService.GetCustomJob"
LIST_JOBS = "JobService.ListCustomJobs"


def outcomes(client: aiplatform_v1.JobServiceClient, calls: int) -> list[str]:
    """What each of `calls` ListCustomJobs calls answered: "ok" or the error's class name."""
    seen = []
    for _ in range(calls):
        try:
            client.list_custom_jobs(
                request=aiplatform_v1.ListCustomJobsRequest(parent=PARENT, page_size=1),
                retry=None,
            )
            seen.append("ok")
        except exceptions.GoogleAPICallError as error:
            seen.append(type(error).__name__)
    return seen


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_rate_injects_about_that_share_and_a_seed_repeats_it(
    emulator_factory: Callable[..., EmulatorProcess], transport: str
) -> None:
    emulator = emulator_factory()
    client = client_for(emulator, transport)
    rates = {"unavailable": 0.2, "internal": 0.1, "resource_exhausted": 0.1}
    emulator.set_fault_rates(LIST_JOBS, rates, seed=11)
    first = outcomes(client, 200)
    injected = emulator.faults()["injected"][LIST_JOBS]
    assert sum(injected.values()) == first.count("ServiceUnavailable") + first.count(
        "InternalServerError") + first.count("TooManyRequests") + first.count("ResourceExhausted")
    assert 0.25 * 200 < sum(injected.values()) < 0.55 * 200, injected
    assert set(injected) == set(rates)

    emulator.set_fault_rates(LIST_JOBS, rates, seed=11)  # the same seed: the same sequence
    assert outcomes(client, 200) == first
    # Other methods are untouched by a rule for one method.
    with pytest.raises(exceptions.NotFound):
        client.get_custom_job(name=f"{PARENT}/customJobs/1", retry=None)
    client.transport.close()


def test_a_rule_for_every_method_and_one_that_overrides_it(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory()
    client = client_for(emulator, "grpc")
    emulator.set_fault_rates("*", {"unavailable": 1.0}, seed=1)
    emulator.set_fault_rates(GET_JOB, {}, latency_seconds=0.2)  # latency only, no faults
    with pytest.raises(exceptions.ServiceUnavailable):
        client.list_custom_jobs(parent=PARENT, retry=None)
    started = time.monotonic()
    with pytest.raises(exceptions.NotFound):
        client.get_custom_job(name=f"{PARENT}/customJobs/1", retry=None)
    assert time.monotonic() - started >= 0.2
    document = emulator.faults()
    assert document["rules"][GET_JOB]["latency_seconds"] == 0.2
    assert document["injected"] == {LIST_JOBS: {"unavailable": 1}}

    emulator.clear_faults()
    assert outcomes(client, 3) == ["ok"] * 3
    assert emulator.faults() == {"armed": {}, "rules": {}, "injected": {}}
    client.transport.close()


def test_reply_lost_by_rate_does_the_work(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    emulator = emulator_factory(queued_seconds=None)
    client = client_for(emulator, "grpc")
    emulator.set_fault_rates("JobService.CreateCustomJob", {"reply_lost": 1.0})
    job = aiplatform_v1.CustomJob(
        display_name="lost-reply", labels={"case": "reply-lost-rate"},
        job_spec=aiplatform_v1.CustomJobSpec(worker_pool_specs=[aiplatform_v1.WorkerPoolSpec(
            machine_spec=aiplatform_v1.MachineSpec(machine_type="n1-standard-4"),
            replica_count=1,
            container_spec=aiplatform_v1.ContainerSpec(image_uri="python:3.11",
                                                       command=["true"]),
        )]),
    )
    with pytest.raises(exceptions.ServiceUnavailable):
        client.create_custom_job(parent=PARENT, custom_job=job, retry=None)
    listed = list(client.list_custom_jobs(request=aiplatform_v1.ListCustomJobsRequest(
        parent=PARENT, filter="labels.case=reply-lost-rate")))
    assert len(listed) == 1  # created, though the client never heard so
    assert emulator.faults()["injected"] == {"JobService.CreateCustomJob": {"reply_lost": 1}}
    client.transport.close()


def test_a_reply_lost_for_a_refused_call_is_not_counted(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    """The refusal reaches the client, so no reply was lost: counting it would make the fault
    figures (the chaos test's bounds) claim a lost reply that never was."""
    emulator = emulator_factory()
    client = client_for(emulator, "grpc")
    emulator.set_fault_rates(GET_JOB, {"reply_lost": 1.0})
    with pytest.raises(exceptions.NotFound):
        client.get_custom_job(name=f"{PARENT}/customJobs/1", retry=None)
    assert emulator.faults()["injected"] == {}
    client.transport.close()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"method": LIST_JOBS, "rates": {"nope": 0.1}}, "unknown fault 'nope'"),
        ({"method": LIST_JOBS, "rates": {"internal": 1.5}}, "probability from 0 to 1"),
        ({"method": LIST_JOBS, "rates": {"internal": 0.6, "unavailable": 0.6}}, "more than 1"),
        ({"method": "ListCustomJobs", "rates": {"internal": 0.1}}, "Service.Method"),
        ({"method": LIST_JOBS, "rates": [], "seed": 1}, "mapping"),
        ({"method": LIST_JOBS, "latency_seconds": -1}, "latency_seconds"),
        ({"method": LIST_JOBS, "rates": {}, "seed": "x"}, "seed"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(
    emulator: EmulatorProcess, body: dict[str, Any], fragment: str
) -> None:
    from gcpjobs.emulator.control import admin_call

    with pytest.raises(EmulatorError, match=r"^emulator refused POST") as error:
        admin_call(emulator.rest_endpoint, "POST", "/_emulator/faults", body,
                   data_dir=emulator.data_dir)
    assert fragment in str(error.value)
    assert emulator.faults()["rules"] == {}
