"""Every invalid CloudRunJob input is refused with one line naming the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from gcpjobs.errors import SpecError
from gcpjobs.specs.cloudrun import CloudRunJob, SecretRef

IMAGE = "python:3.11"
GPU = {"gpu_type": "nvidia-l4", "cpu": 4, "memory": "16Gi"}

# (fields besides image, the field the error must name, a fragment that says how to fix it)
BAD_INPUTS: list[tuple[dict[str, Any], str, str]] = [
    # required / unknown fields
    ({"image": None}, "image", "text"),
    ({"image": ""}, "image", "give the container image"),
    ({"image": "python 3.11"}, "image", "only the image URI"),
    ({"imag": "x"}, "imag", "did you mean 'image'"),
    ({"task_cont": 2}, "task_cont", "did you mean 'task_count'"),
    ({"machine_type": "n1-standard-4"}, "machine_type", "remove it"),
    ({"kind": "vertex"}, "kind", "'cloud-run'"),
    # name, project, region
    ({"name": ""}, "name", "give the job a name"),
    ({"name": "My_Job"}, "name", "e.g. 'my-job'"),
    ({"name": "1job"}, "name", "starting with a letter"),
    ({"name": "job-"}, "name", "not ending with a hyphen"),
    ({"name": "j" * 58}, "name", "at most 57"),
    ({"project": "My Project"}, "project", "lowercase letters"),
    ({"region": "us central"}, "region", "like us-central1"),
    # container
    ({"command": 5}, "command", "list"),
    ({"command": "python 'unbalanced"}, "command", "check the quotes"),
    ({"args": "--epochs 5"}, "args", "write it as [a, b]"),
    ({"env": ["A=1"]}, "env", "{name: NAME, value: VALUE}"),
    ({"env": [{"name": "A", "value_source": {"config_map": {}}}]}, "env", "secret_key_ref"),
    ({"env": {"1ABC": "x"}}, "env", "not starting with a digit"),
    ({"env": {"TOKEN": None}}, "env", "give it one or remove it"),
    ({"env": {"CONFIG": [1, 2]}}, "env", "quote structured values"),
    ({"env": {"CLOUD_RUN_TASK_INDEX": "3"}}, "env", "set by Cloud Run"),
    ({"env": {f"V{i}": "x" for i in range(1001)}}, "env", "at most 1000"),
    # secret references
    ({"env": {"DB": {"secret": "my secret"}}}, "env", "projects/PROJECT/secrets/NAME"),
    ({"env": {"DB": {"secret": "db", "version": "v 1"}}}, "env", "'latest', a version number"),
    ({"env": {"DB": {"secret": "db", "versoin": "1"}}}, "env", "did you mean 'version'"),
    ({"env": {"DB": {"version": "1"}}}, "env", "secret: is required"),
    # resources
    ({"cpu": 3}, "cpu", "use 1, 2, 4 or 8"),
    ({"cpu": "0.5"}, "cpu", "use 1, 2, 4 or 8"),
    ({"cpu": "1500m"}, "cpu", "use 1, 2, 4 or 8"),
    ({"cpu": True}, "cpu", "text"),
    ({"memory": "lots"}, "memory", "like 512Mi or 4Gi"),
    ({"memory": "2GB"}, "memory", "like 512Mi or 4Gi"),
    ({"memory": 2048}, "memory", "put the value in quotes"),
    ({"memory": "128Mi"}, "memory", "between 512Mi and 32Gi"),
    ({"memory": "64Gi", "cpu": 8}, "memory", "between 512Mi and 32Gi"),
    ({"cpu": 4, "memory": "1Gi"}, "memory", "at least 2Gi"),
    ({"cpu": 8, "memory": "2Gi"}, "memory", "at least 4Gi"),
    ({"cpu": 4}, "memory", "set memory: 2Gi"),
    ({"memory": "8Gi"}, "memory", "set cpu: 2"),
    ({"cpu": 2, "memory": "12Gi"}, "memory", "set cpu: 4"),
    # timeout
    ({"timeout": "soon"}, "timeout", "'2h'"),
    ({"timeout": -5}, "timeout", "at least 1 second"),
    ({"timeout": 0}, "timeout", "at least 1 second"),
    ({"timeout": "25h"}, "timeout", "launch_stage: BETA"),
    ({"timeout": "169h", "launch_stage": "BETA"}, "timeout", "check the unit"),
    ({"timeout": "2h", **GPU}, "timeout", "at most 1 hour"),
    # counts
    ({"max_retries": 11}, "max_retries", "between 0 and 10"),
    ({"max_retries": -1}, "max_retries", "between 0 and 10"),
    ({"task_count": 0}, "task_count", "between 1 and 10000"),
    ({"task_count": 10_001}, "task_count", "between 1 and 10000"),
    ({"task_count": True}, "task_count", "write it like 1"),
    ({"parallelism": 5, "task_count": 4}, "parallelism", "at most task_count"),
    ({"parallelism": -1}, "parallelism", "0 (as many as possible)"),
    # GPU
    ({"gpu_type": "nvidia-l5"}, "gpu_type", "did you mean nvidia-l4"),
    ({"gpu_type": "tpu"}, "gpu_type", "use nvidia-l4"),
    ({"gpu_count": 1}, "gpu_type", "set gpu_type: nvidia-l4"),
    ({**GPU, "gpu_count": 2}, "gpu_count", "exactly one GPU"),
    ({"gpu_type": "nvidia-l4"}, "cpu", "set cpu: 4"),
    ({"gpu_type": "nvidia-l4", "cpu": 2, "memory": "8Gi"}, "cpu", "at least 4 CPU"),
    ({"gpu_type": "nvidia-l4", "cpu": 4, "memory": "8Gi"}, "memory", "at least 16Gi"),
    # networking
    ({"vpc_connector": "conn", "network": "default"}, "network", "either a Serverless VPC"),
    ({"vpc_connector": "conn", "subnetwork": "default"}, "subnetwork", "Direct VPC egress"),
    ({"vpc_connector": "Bad Connector"}, "vpc_connector", "connectors/NAME"),
    ({"vpc_connector": "conn", "vpc_egress": "everything"}, "vpc_egress",
     "all-traffic or private-ranges-only"),
    ({"vpc_egress": "all-traffic"}, "vpc_egress", "set vpc_connector or network"),
    ({"network": "projects/p/networks/x"}, "network", "projects/PROJECT/global/networks/NAME"),
    ({"subnetwork": "Sub_1"}, "subnetwork", "projects/PROJECT/regions/REGION/subnetworks"),
    ({"network_tags": ["web"]}, "network_tags", "set network or subnetwork"),
    ({"network": "default", "network_tags": ["Web Tag"]}, "network_tags", "lowercase letters"),
    ({"service_account": "runner"}, "service_account", "give its email"),
    # labels
    ({"labels": "team=ml"}, "labels", "name: value"),
    ({"labels": {"gcpjobs-kind": "x"}}, "labels", "rename it"),
    ({"labels": {"Team": "a", "team": "b"}}, "labels", "rename one of them"),
    ({"labels": {"run.googleapis.com/x": "y"}}, "labels", "Cloud Run reserves"),
    ({"labels": {"cloud.googleapis.com/location": "y"}}, "labels", "set the region field"),
    ({"labels": {"serving.knative.dev/x": "y"}}, "labels", "drop the namespace"),
    ({"labels": {f"k{i}": "v" for i in range(63)}}, "labels", "remove some"),
    # stages and environments
    ({"launch_stage": "preview"}, "launch_stage", "GA, BETA, ALPHA"),
    ({"execution_environment": "gen3"}, "execution_environment", "gen1 or gen2"),
    ({"keep_job": "perhaps"}, "keep_job", "true or false"),
]


@pytest.mark.parametrize(("fields", "field", "fix"), BAD_INPUTS,
                         ids=[f"{row[1]}-{i}" for i, row in enumerate(BAD_INPUTS)])
def test_bad_input_is_one_line_naming_field_and_fix(
    fields: dict[str, Any], field: str, fix: str
) -> None:
    data = {"image": IMAGE, **fields}
    with pytest.raises(SpecError) as caught:
        CloudRunJob(**data)
    error = caught.value
    assert error.field == field
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{field}: ")
    assert fix in message


@pytest.mark.parametrize(("fields", "field", "fix"), BAD_INPUTS[:12])
def test_model_validate_raises_the_same_one_line_error(
    fields: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(SpecError) as caught:
        CloudRunJob.model_validate({"image": IMAGE, **fields})
    assert caught.value.field == field


def test_missing_image_is_named() -> None:
    with pytest.raises(SpecError) as caught:
        CloudRunJob()  # type: ignore[call-arg]
    assert caught.value.field == "image"
    assert "required" in str(caught.value)


@pytest.mark.parametrize("env", [
    {"API_TOKEN": ["hunter2-secret"]},
    {"API_TOKEN": {"secret": "db", "value": "hunter2-secret"}},
    [{"name": "API_TOKEN", "value": "hunter2-secret", "extra": 1}],
    {"1API_TOKEN": "hunter2-secret"},
])
def test_secret_env_values_are_never_echoed_in_errors(env: Any) -> None:
    with pytest.raises(SpecError) as caught:
        CloudRunJob(image=IMAGE, env=env)
    assert caught.value.field == "env"
    assert "hunter2-secret" not in str(caught.value)


def test_timeout_over_24_hours_is_allowed_with_a_preview_launch_stage() -> None:
    job = CloudRunJob(image=IMAGE, timeout="48h", launch_stage="beta")
    assert job.timeout.total_seconds() == 48 * 3600
    assert job.launch_stage == "BETA"
    with pytest.raises(SpecError, match="Preview feature"):
        job.launch_stage = "GA"


def test_secret_ref_on_its_own() -> None:
    assert SecretRef(secret="projects/p-1/secrets/db").version == "latest"
    assert SecretRef(secret="db", version=3).version == "3"
    with pytest.raises(SpecError) as caught:
        SecretRef(secret="db", version="")
    assert caught.value.field == "version"


def test_assignment_is_validated_and_refusal_leaves_the_job_unchanged() -> None:
    job = CloudRunJob(image=IMAGE, task_count=4, parallelism=2)
    with pytest.raises(SpecError) as caught:
        job.task_count = 1
    assert caught.value.field == "parallelism"
    assert job.task_count == 4


def test_model_copy_update_is_validated() -> None:
    job = CloudRunJob(image=IMAGE)
    with pytest.raises(SpecError) as caught:
        job.model_copy(update={"cpu": "3"})
    assert caught.value.field == "cpu"


def test_a_secret_pasted_into_a_secret_ref_is_not_echoed() -> None:
    with pytest.raises(SpecError) as caught:
        CloudRunJob(image=IMAGE, env={"DB": {"secret": "hunter2 secret!"}})
    assert "hunter2" not in str(caught.value)
    assert "Secret Manager secret name" in str(caught.value)
