"""The shared field types (`specs.fields`) and the spec base's plain-pydantic plumbing:
nested specs, assignment and derived values."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest
from pydantic import Field

from gcpjobs.errors import SpecError
from gcpjobs.specs import base
from gcpjobs.specs.base import Spec
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.specs.fields import Command, Image, Labels, ProjectId, Region, TextList
from gcpjobs.specs.vertex import VertexJob, WorkerPool


class _Part(Spec):
    image: Image
    command: Command = Field(default_factory=list)


class _Whole(Spec):
    project: ProjectId = None
    region: Region = "us-central1"
    tags: TextList = Field(default_factory=list)
    labels: Labels = Field(default_factory=dict)
    parts: list[_Part] = Field(default_factory=list)


def _error(cls: type[Spec], data: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        cls.model_validate(data)
    return caught.value


def test_a_new_spec_gets_the_rules_by_naming_the_types() -> None:
    whole = _Whole.model_validate({
        "project": "my-project", "tags": [1, True], "labels": {"Team": 7},
        "parts": [{"image": "python:3.11", "command": "python -c 'print(1)'"}]})
    assert whole.tags == ["1", "true"]
    assert whole.labels == {"team": "7"}
    assert whole.parts[0].command == ["python", "-c", "print(1)"]
    assert str(_error(_Whole, {"region": "EU"})) == (
        "region: 'EU' is not a Google Cloud region; write it like us-central1")
    assert _error(_Whole, {"project": "Bad_Project"}).field == "project"


def test_an_error_in_a_nested_spec_names_its_full_path() -> None:
    error = _error(_Whole, {"parts": [{"image": "python:3.11"}, {"image": "a b"}]})
    assert str(error) == "parts[1].image: 'a b' contains whitespace; give only the image URI"


@pytest.mark.parametrize(("key", "path"), [(0, "['0']"), (1.5, "['1.5']"), (True, "True")])
def test_a_nested_mapping_with_keys_that_are_not_text(key: Any, path: str) -> None:
    """YAML allows `{0: null}`; it is an unknown field, not a TypeError from keywords."""
    error = _error(VertexJob, {"image": "python:3.11", "extra_worker_pools": [{key: None}]})
    assert error.field == base.join_path("extra_worker_pools[0]", path)
    assert error.reason.startswith("is not a known field; remove it (known fields: ")
    assert _error(WorkerPool, {key: None}).field == path


def test_validator_messages_win_over_type_errors_across_nesting() -> None:
    """The nested spec's errors stay pydantic's until the outermost spec words one: a
    type error in a pool does not beat an earlier one of the job, a validator's does."""
    typed = _error(VertexJob, {"image": 5, "extra_worker_pools": [{"replica_count": "x"}]})
    assert typed.field == "image"
    worded = _error(VertexJob, {"image": 5, "extra_worker_pools": [{"machine_type": "n9"}]})
    assert worded.field == "extra_worker_pools[0].machine_type"


def test_the_pools_and_the_job_share_their_rules() -> None:
    bad = {"machine_type": "n9-standard-4", "boot_disk_size_gb": 5, "accelerator_type": "t4x",
           "boot_disk_type": "floppy", "env": {"1A": "x"}, "command": "a 'b"}
    for name, value in bad.items():
        job = _error(VertexJob, {"image": "python:3.11", name: value})
        pool = _error(VertexJob, {"image": "python:3.11", "extra_worker_pools": [{name: value}]})
        assert job.field == name
        assert pool.field == f"extra_worker_pools[0].{name}"
        assert pool.reason == job.reason


def test_assignment_rebuilds_and_keeps_given_fields_apart_from_derived_ones() -> None:
    job = VertexJob(image="python:3.11")
    job.machine_type = "a2-highgpu-1g"
    assert (job.accelerator_type, job.accelerator_count) == ("NVIDIA_TESLA_A100", 1)
    assert job.model_fields_set == {"image", "machine_type"}
    copied = pickle.loads(pickle.dumps(job))
    assert copied == job
    assert copied.model_fields_set == job.model_fields_set
    with pytest.raises(SpecError) as caught:
        job.region = "EU"
    assert caught.value.field == "region"
    assert job.region == "us-central1"


def test_derived_gpu_count_is_not_counted_as_given() -> None:
    job = CloudRunJob(image="python:3.11", gpu_type="nvidia-l4", cpu="4", memory="16Gi")
    assert job.gpu_count == 1
    assert "gpu_count" not in job.model_fields_set
    assert job.with_overrides(gpu_type=None, cpu=None, memory=None).gpu_count is None


def test_the_base_uses_no_pydantic_internals() -> None:
    assert "__pydantic" not in inspect.getsource(base)
