"""Every invalid VertexJob input is refused with one line naming the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from gcpjobs.errors import SpecError
from gcpjobs.specs.vertex import VertexJob

IMAGE = "python:3.11"

# (fields besides image, the field the error must name, a fragment that says how to fix it)
BAD_INPUTS: list[tuple[dict[str, Any], str, str]] = [
    # required / unknown fields
    ({"image": None}, "image", "text"),
    ({"image": ""}, "image", "give the container image"),
    ({"image": "python 3.11"}, "image", "only the image URI"),
    ({"imag": "x"}, "imag", "did you mean 'image'"),
    ({"machine_typ": "n1-standard-4"}, "machine_typ", "did you mean 'machine_type'"),
    ({"zzz": 1}, "zzz", "remove it"),
    ({"kind": "cloud-run"}, "kind", "'vertex'"),
    # name, project, region
    ({"name": ""}, "name", "give the job a name"),
    ({"name": "x" * 129}, "name", "at most 128"),
    ({"project": "My Project"}, "project", "lowercase letters"),
    ({"project": "abc"}, "project", "6-30"),
    ({"region": "us central"}, "region", "like us-central1"),
    ({"region": "US-CENTRAL1"}, "region", "like us-central1"),
    # container
    ({"command": 5}, "command", "list"),
    ({"command": "python 'unbalanced"}, "command", "check the quotes"),
    ({"args": "--epochs 5"}, "args", "write it as [a, b]"),
    ({"args": [["nested"]]}, "args[0]", "quotes"),
    ({"env": ["A=1"]}, "env", "{name: NAME, value: VALUE}"),
    ({"env": {"1ABC": "x"}}, "env", "not starting with a digit"),
    ({"env": {"MY VAR": "x"}}, "env", "letters, digits and '_'"),
    ({"env": {"TOKEN": None}}, "env", "give it one or remove it"),
    ({"env": {"CONFIG": {"a": 1}}}, "env", "quote structured values"),
    ({"env": {f"V{i}": "x" for i in range(101)}}, "env", "at most 100"),
    # machine, accelerator, disk
    ({"machine_type": "n1-standart-4"}, "machine_type", "did you mean n1-standard-4"),
    ({"machine_type": "quantum-9000"}, "machine_type", "configure-compute"),
    ({"machine_type": "e2-standard-4", "accelerator_type": "NVIDIA_TESLA_T4"},
     "accelerator_type", "use a machine type that can carry it, e.g. n1-standard-4"),
    ({"accelerator_type": "NVIDIA_TESLA_A100"}, "accelerator_type", "a2-highgpu-1g"),
    ({"accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 3},
     "accelerator_count", "must be 1, 2 or 4 for NVIDIA_TESLA_T4 on n1-standard-4"),
    ({"accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 0},
     "accelerator_count", "use 1 or remove accelerator_type"),
    ({"accelerator_count": 2}, "accelerator_type", "set accelerator_type"),
    ({"accelerator_count": -1}, "accelerator_count", "at least 0"),
    ({"accelerator_count": True}, "accelerator_count", "write it like 1"),
    ({"accelerator_type": "NVIDIA_TESLA_T5"}, "accelerator_type", "did you mean NVIDIA_TESLA_T4"),
    ({"machine_type": "a2-highgpu-1g", "accelerator_count": 2},
     "accelerator_count", "a2-highgpu-2g"),
    ({"machine_type": "g2-standard-4", "accelerator_type": "NVIDIA_TESLA_T4"},
     "accelerator_type", "leave accelerator_type and accelerator_count unset"),
    ({"boot_disk_type": "ssd"}, "boot_disk_type", "pd-ssd"),
    ({"boot_disk_size_gb": -5}, "boot_disk_size_gb", "between 100 and 64000 GB"),
    ({"boot_disk_size_gb": 99_999}, "boot_disk_size_gb", "between 100 and 64000 GB"),
    ({"boot_disk_size_gb": "big"}, "boot_disk_size_gb", "write it like 100"),
    ({"boot_disk_size_gb": 100.5}, "boot_disk_size_gb", "drop the fraction"),
    # durations and scheduling
    ({"maximum_run_time": "soon"}, "maximum_run_time", "'2h'"),
    ({"maximum_run_time": 0}, "maximum_run_time", "longer than zero"),
    ({"maximum_run_time": "-1h"}, "maximum_run_time", "'2h'"),
    ({"maximum_run_time": "30d"}, "maximum_run_time", "check the unit"),
    ({"maximum_run_time": True}, "maximum_run_time", "'2h'"),
    ({"maximum_run_time_hours": "two"}, "maximum_run_time_hours", "write it like 2"),
    ({"maximum_run_time_hours": 0}, "maximum_run_time_hours", "more than 0"),
    ({"maximum_run_time_hours": 2, "maximum_run_time": "2h"}, "maximum_run_time_hours", "not both"),
    ({"scheduling_strategy": "cheap"}, "scheduling_strategy", "'SPOT'"),
    ({"max_wait_duration": "1h"}, "max_wait_duration", "scheduling_strategy: FLEX_START"),
    ({"scheduling_strategy": "FLEX_START", "max_wait_duration": -300},
     "max_wait_duration", "0 means wait forever"),
    ({"scheduling_strategy": "SPOT", "persistent_resource_id": "my-pool"},
     "scheduling_strategy", "remove persistent_resource_id"),
    ({"persistent_resource_id": "My_Pool"}, "persistent_resource_id", "lowercase letters"),
    ({"restart_job_on_worker_restart": "perhaps"}, "restart_job_on_worker_restart", "true or false"),
    # network, service account, outputs
    ({"network": "default"}, "network", "projects/PROJECT_NUMBER/global/networks/NETWORK"),
    ({"network": "projects/my-project/global/networks/vpc"}, "network", "PROJECT_NUMBER"),
    ({"reserved_ip_ranges": ["range-a"]}, "reserved_ip_ranges", "set network"),
    ({"network": "projects/123/global/networks/vpc", "reserved_ip_ranges": ["Bad Range"]},
     "reserved_ip_ranges", "address range"),
    ({"service_account": "trainer"}, "service_account", "give its email"),
    ({"base_output_directory": "/tmp/out"}, "base_output_directory", "gs://BUCKET/PATH"),
    ({"base_output_directory": "s3://bucket/out"}, "base_output_directory", "gs://BUCKET/PATH"),
    # labels
    ({"labels": "team=ml"}, "labels", "name: value"),
    ({"labels": {"gcpjobs-kind": "x"}}, "labels", "rename it"),
    ({"labels": {"Team": "a", "team": "b"}}, "labels", "rename one of them"),
    ({"labels": {"": "x"}}, "labels", "give every label a name"),
    ({"labels": {f"k{i}": "v" for i in range(63)}}, "labels", "remove some"),
    # extra worker pools
    ({"extra_worker_pools": [{}, {}, {}, {}]}, "extra_worker_pools", "remove the rest"),
    ({"extra_worker_pools": [{"replica_count": 0}]},
     "extra_worker_pools[0].replica_count", "at least 1"),
    ({"extra_worker_pools": ["workers"]}, "extra_worker_pools[0]", "mapping of fields"),
    ({"extra_worker_pools": [None, {"machine_type": "n1-standart-8"}]},
     "extra_worker_pools[1].machine_type", "did you mean n1-standard-8"),
    ({"extra_worker_pools": [{"replicas": 2}]},
     "extra_worker_pools[0].replicas", "did you mean 'replica_count'"),
    ({"extra_worker_pools": [{"machine_type": "e2-standard-4", "accelerator_type": "NVIDIA_L4"}]},
     "extra_worker_pools[0].accelerator_type", "g2-standard-4"),
    ({"accelerator_type": "NVIDIA_TESLA_T4",
      "extra_worker_pools": [{"accelerator_count": 3}]},
     "extra_worker_pools[0].accelerator_count", "must be 1, 2 or 4"),
    ({"env": {f"V{i}": "x" for i in range(60)},
      "extra_worker_pools": [{"env": {f"W{i}": "x" for i in range(60)}}]},
     "extra_worker_pools[0].env", "the primary's variables count too"),
]


@pytest.mark.parametrize(("fields", "field", "fix"), BAD_INPUTS,
                         ids=[f"{row[1]}-{i}" for i, row in enumerate(BAD_INPUTS)])
def test_bad_input_is_one_line_naming_field_and_fix(
    fields: dict[str, Any], field: str, fix: str
) -> None:
    data = {"image": IMAGE, **fields}
    with pytest.raises(SpecError) as caught:
        VertexJob(**data)
    error = caught.value
    assert error.field == field
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{field}: ")
    assert fix in message


@pytest.mark.parametrize(("fields", "field", "fix"), BAD_INPUTS[:10])
def test_model_validate_raises_the_same_one_line_error(
    fields: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(SpecError) as caught:
        VertexJob.model_validate({"image": IMAGE, **fields})
    assert caught.value.field == field


def test_missing_image_is_named() -> None:
    with pytest.raises(SpecError) as caught:
        VertexJob()  # type: ignore[call-arg]
    assert caught.value.field == "image"
    assert "required" in str(caught.value)


def test_secret_env_values_are_never_echoed_in_errors() -> None:
    with pytest.raises(SpecError) as caught:
        VertexJob(image=IMAGE, env={"API_TOKEN": ["hunter2-secret"]})
    assert "hunter2-secret" not in str(caught.value)


def test_pydantic_validation_error_never_escapes_assignment() -> None:
    job = VertexJob(image=IMAGE)
    with pytest.raises(SpecError) as caught:
        job.boot_disk_size_gb = 5
    assert caught.value.field == "boot_disk_size_gb"
    assert job.boot_disk_size_gb == 100  # unchanged after a refused assignment


def test_model_copy_update_is_validated() -> None:
    job = VertexJob(image=IMAGE)
    with pytest.raises(SpecError) as caught:
        job.model_copy(update={"machine_type": "n1-standart-4"})
    assert caught.value.field == "machine_type"
