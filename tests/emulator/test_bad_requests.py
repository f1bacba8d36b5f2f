"""Invalid CreateCustomJob requests: INVALID_ARGUMENT in the real layout, on both transports.

The validation rules themselves are tested in test_validation.py; this checks that they reach
a client of each transport, unchanged, and that nothing is created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from tests.emulator.support import PARENT, custom_job, unique

POOL0 = "job_spec.worker_pool_specs[0]"


def _change(path: str, value: Any) -> Callable[[aiplatform_v1.CustomJob], None]:
    def apply(job: aiplatform_v1.CustomJob) -> None:
        target: Any = job
        *parents, leaf = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        setattr(target, leaf, value)

    return apply


CASES = [
    ("unknown machine type", _change("job_spec.worker_pool_specs.0.machine_spec.machine_type", "n1-standard-3"),
     f"{POOL0}.machine_spec.machine_type"),
    ("accelerator not allowed", _change("job_spec.worker_pool_specs.0.machine_spec",
                                        aiplatform_v1.MachineSpec(machine_type="e2-standard-4",
                                                                  accelerator_type="NVIDIA_TESLA_T4",
                                                                  accelerator_count=1)),
     f"{POOL0}.machine_spec.accelerator_type"),
    ("two primary replicas", _change("job_spec.worker_pool_specs.0.replica_count", 2),
     f"{POOL0}.replica_count"),
    ("missing image", _change("job_spec.worker_pool_specs.0.container_spec.image_uri", ""),
     f"{POOL0}.container_spec.image_uri"),
    ("bad label", _change("labels", {"Bad Key": "v"}), "labels"),
]


@pytest.mark.parametrize(("case", "change", "field"), CASES, ids=[c[0] for c in CASES])
def test_invalid_job_is_refused_with_the_found_errors_layout(
    job_client: aiplatform_v1.JobServiceClient,
    case: str,
    change: Callable[[aiplatform_v1.CustomJob], None],
    field: str,
) -> None:
    marker = unique()
    job = custom_job(["true"], labels={"marker": marker})
    change(job)
    if case != "bad label":
        job.labels["marker"] = marker

    with pytest.raises(exceptions.BadRequest) as caught:
        job_client.create_custom_job(parent=PARENT, custom_job=job)

    message = caught.value.message
    assert message.endswith(" \t"), repr(message)  # the real layout ends each item so
    assert f"List of found errors:\t1.Field: {field}; Message: " in message
    assert "\n" not in message
    if job_client.transport.kind == "grpc":
        assert isinstance(caught.value, exceptions.InvalidArgument)
    created = list(job_client.list_custom_jobs(request={"parent": PARENT, "filter": f"labels.marker={marker}"}))
    assert created == []


def test_several_problems_are_numbered_in_one_message(job_client: aiplatform_v1.JobServiceClient) -> None:
    job = custom_job(["true"])
    job.display_name = ""
    job.job_spec.worker_pool_specs[0].machine_spec.machine_type = "n1-standard-3"

    with pytest.raises(exceptions.BadRequest) as caught:
        job_client.create_custom_job(parent=PARENT, custom_job=job)

    assert "1.Field: display_name; Message: " in caught.value.message
    assert f"2.Field: {POOL0}.machine_spec.machine_type; Message: " in caught.value.message


def test_a_location_that_is_not_a_region_is_refused(job_client: aiplatform_v1.JobServiceClient) -> None:
    with pytest.raises(exceptions.BadRequest) as caught:
        job_client.create_custom_job(parent="projects/p/locations/mars", custom_job=custom_job(["true"]))
    assert 'Location "mars" is not a Vertex AI region' in caught.value.message


@pytest.mark.parametrize("parent", ["projects/p", "locations/us-central1", ""])
def test_a_malformed_parent_is_refused(grpc_job_client: aiplatform_v1.JobServiceClient, parent: str) -> None:
    # (The REST client refuses these itself, before sending.)
    with pytest.raises(exceptions.InvalidArgument) as caught:
        grpc_job_client.create_custom_job(parent=parent, custom_job=custom_job(["true"]))
    assert "expected projects/{project}/locations/{location}" in caught.value.message
