"""What CreateJob refuses: INVALID_ARGUMENT naming the field, over gRPC and REST."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from tests.emulator.cloudrun.support import IMAGE, PARENT, RunClients, job, job_id


def _with_container(**container: Any) -> run_v2.Job:
    spec = job()
    spec.template.template.containers = [run_v2.Container(image=IMAGE, command=["true"], **container)]
    return spec


def _changed(change: Any) -> run_v2.Job:
    spec = job()
    change(spec)
    return spec


CASES: list[tuple[str, run_v2.Job, str]] = [
    ("no template", run_v2.Job(), "job.template: Required field is not set."),
    ("no containers", _changed(lambda j: setattr(j.template.template, "containers", [])),
     "job.template.template.containers: A job needs at least one container."),
    ("no image", _changed(lambda j: setattr(j.template.template.containers[0], "image", "")),
     "job.template.template.containers[0].image: Required field is not set."),
    ("bad cpu", _with_container(resources={"limits": {"cpu": "3"}}),
     "the only supported values for CPU are '1', '2', '4', and '8'"),
    ("bad memory", _with_container(resources={"limits": {"memory": "lots"}}),
     "containers[0].resources.limits.memory: Invalid value 'lots'"),
    ("4 cpu, little memory", _with_container(resources={"limits": {"cpu": "4", "memory": "1Gi"}}),
     "Setting 4 CPU requires at least 2Gi of memory."),
    ("too many tasks", job(task_count=10_001), "job.template.task_count: Must be between 1 and 10000"),
    ("parallelism above tasks", job(task_count=2, parallelism=3),
     "Parallelism (3) cannot be greater than the task count (2)."),
    ("too many retries", job(max_retries=11), "max_retries: Must be between 0 and 10, got 11."),
    ("timeout above 168h", job(timeout=timedelta(hours=169)), "can be at most 604800s (168 hours)"),
    ("reserved label", job(labels={"run.googleapis.com/foo": "x"}),
     "does not support labels in the run.googleapis.com"),
    ("bad label value", job(template_labels={"k": "Upper"}), "job.template.labels"),
]


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_jobs_are_refused(grpc_run: RunClients, spec: run_v2.Job, expected: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        grpc_run.jobs.create_job(parent=PARENT, job=spec, job_id=job_id())
    assert expected in caught.value.message


@pytest.mark.parametrize("bad_id", ["Upper", "1starts-with-digit", "ends-", "a" * 64, "under_score"])
def test_bad_job_ids_are_refused(run: RunClients, bad_id: str) -> None:
    with pytest.raises(exceptions.BadRequest, match="a job name must use only lowercase letters"):
        run.jobs.create_job(parent=PARENT, job=job(), job_id=bad_id)


def test_rest_errors_name_the_field(run: RunClients) -> None:
    with pytest.raises(exceptions.BadRequest, match=r"job\.template\.task_count"):
        run.jobs.create_job(parent=PARENT, job=job(task_count=20_000), job_id=job_id())


def test_bad_overrides_are_refused(grpc_run: RunClients) -> None:
    created = grpc_run.jobs.create_job(parent=PARENT, job=job(), job_id=job_id()).result(timeout=10)
    with pytest.raises(exceptions.InvalidArgument, match=r"overrides\.task_count"):
        grpc_run.jobs.run_job(request={"name": created.name, "overrides": {"task_count": 10_001}})
    with pytest.raises(exceptions.InvalidArgument, match="no container named 'other'"):
        grpc_run.jobs.run_job(
            request={"name": created.name, "overrides": {"container_overrides": [{"name": "other"}]}}
        )
