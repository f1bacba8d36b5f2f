"""VertexJob -> CustomJob proto, display names, and the redacted preview."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from google.cloud import aiplatform_v1

from gcpjobs.protos.vertex import (
    build_custom_job,
    custom_job_to_dict,
    display_name_for,
    new_submission_id,
    preview,
)
from gcpjobs.specs.labels import KIND_LABEL, SUBMISSION_LABEL
from gcpjobs.specs.secrets import REDACTED
from gcpjobs.specs.vertex import VertexJob

SUBMISSION = "0123456789abcdef0123456789abcdef"


def full_job() -> VertexJob:
    return VertexJob(
        name="train",
        project="my-project",
        region="europe-west4",
        image="gcr.io/p/trainer:1",
        command=["python", "train.py"],
        args=["--epochs", "5"],
        env={"API_TOKEN": "tok-XYZ-123", "DB_PASSWORD": "pw-ABC-987", "BATCH_SIZE": "32"},
        machine_type="n1-standard-8",
        accelerator_type="NVIDIA_TESLA_V100",
        accelerator_count=2,
        boot_disk_type="pd-standard",
        boot_disk_size_gb=250,
        maximum_run_time="3h",
        scheduling_strategy="FLEX_START",
        max_wait_duration="30m",
        restart_job_on_worker_restart=True,
        disable_retries=True,
        network="projects/123/global/networks/vpc",
        reserved_ip_ranges=["range-a"],
        service_account="trainer@my-project.iam.gserviceaccount.com",
        labels={"Team": "ML"},
        enable_web_access=True,
        base_output_directory="gs://bucket/out",
        extra_worker_pools=[{"replica_count": 3}, None, {"machine_type": "n2-standard-4"}],
    )


def test_new_submission_id_is_a_unique_label_value() -> None:
    ids = {new_submission_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and i == i.lower() and i.isalnum() for i in ids)


def test_display_name_is_unique_suffix_and_bounded() -> None:
    assert display_name_for("train", SUBMISSION) == "train-01234567"
    long = display_name_for("é" * 128, SUBMISSION)
    assert len(long) == 128 and long.endswith("-01234567")
    assert display_name_for("x", new_submission_id()) != display_name_for("x", new_submission_id())


def test_build_custom_job_fields() -> None:
    custom_job = build_custom_job(full_job(), SUBMISSION)
    assert isinstance(custom_job, aiplatform_v1.CustomJob)
    assert custom_job.display_name == "train-01234567"
    assert dict(custom_job.labels) == {
        "team": "ml", SUBMISSION_LABEL: SUBMISSION, KIND_LABEL: "vertex"}
    spec = custom_job.job_spec
    primary, workers, empty, servers = spec.worker_pool_specs
    assert primary.replica_count == 1
    assert primary.container_spec.image_uri == "gcr.io/p/trainer:1"
    assert list(primary.container_spec.command) == ["python", "train.py"]
    assert list(primary.container_spec.args) == ["--epochs", "5"]
    assert {e.name: e.value for e in primary.container_spec.env}["BATCH_SIZE"] == "32"
    assert primary.machine_spec.machine_type == "n1-standard-8"
    assert primary.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType.NVIDIA_TESLA_V100
    assert primary.machine_spec.accelerator_count == 2
    assert primary.disk_spec.boot_disk_type == "pd-standard"
    assert primary.disk_spec.boot_disk_size_gb == 250
    assert workers.replica_count == 3
    assert workers.machine_spec.accelerator_count == 2
    assert empty == aiplatform_v1.WorkerPoolSpec()
    assert servers.machine_spec.machine_type == "n2-standard-4"
    assert servers.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType.ACCELERATOR_TYPE_UNSPECIFIED
    assert spec.scheduling.timeout == timedelta(hours=3)
    assert spec.scheduling.strategy == aiplatform_v1.Scheduling.Strategy.FLEX_START
    assert spec.scheduling.max_wait_duration == timedelta(minutes=30)
    assert spec.scheduling.restart_job_on_worker_restart is True
    assert spec.scheduling.disable_retries is True
    assert spec.network == "projects/123/global/networks/vpc"
    assert list(spec.reserved_ip_ranges) == ["range-a"]
    assert spec.service_account == "trainer@my-project.iam.gserviceaccount.com"
    assert spec.base_output_directory.output_uri_prefix == "gs://bucket/out"
    assert spec.enable_web_access is True


def test_build_round_trips_through_proto_json() -> None:
    custom_job = build_custom_job(full_job(), SUBMISSION)
    again = aiplatform_v1.CustomJob.from_json(aiplatform_v1.CustomJob.to_json(custom_job))
    assert again == custom_job


def test_minimal_job_sends_no_optional_fields() -> None:
    data = custom_job_to_dict(build_custom_job(VertexJob(image="python:3.11"), SUBMISSION))
    spec = data["jobSpec"]
    assert set(spec) == {"workerPoolSpecs", "scheduling"}
    assert spec["scheduling"] == {"timeout": "604800s"}  # STANDARD is the service's default
    assert spec["workerPoolSpecs"][0]["machineSpec"] == {"machineType": "n1-standard-4"}


def test_spot_and_persistent_resource() -> None:
    spot = build_custom_job(VertexJob(image="x", scheduling_strategy="spot"), SUBMISSION)
    assert spot.job_spec.scheduling.strategy == aiplatform_v1.Scheduling.Strategy.SPOT
    pooled = build_custom_job(VertexJob(image="x", persistent_resource_id="pool-1"), SUBMISSION)
    assert pooled.job_spec.persistent_resource_id == "pool-1"


def test_invalid_submission_id_is_refused() -> None:
    with pytest.raises(ValueError, match="submission_id"):
        build_custom_job(VertexJob(image="x"), "Not A Label")


def test_custom_job_to_dict_is_camel_case_and_redacts() -> None:
    data = custom_job_to_dict(build_custom_job(full_job(), SUBMISSION))
    env = {e["name"]: e["value"] for e in data["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
    assert env == {"API_TOKEN": REDACTED, "DB_PASSWORD": REDACTED, "BATCH_SIZE": "32"}
    assert data["displayName"] == "train-01234567"
    unredacted = custom_job_to_dict(build_custom_job(full_job(), SUBMISSION), redact=False)
    assert "tok-XYZ-123" in json.dumps(unredacted)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_preview_redacts_secrets_everywhere(fmt: str) -> None:
    text = preview(full_job(), fmt, submission_id=SUBMISSION)
    assert "tok-XYZ-123" not in text and "pw-ABC-987" not in text
    request = yaml.safe_load(text) if fmt == "yaml" else json.loads(text)
    assert request["parent"] == "projects/my-project/locations/europe-west4"
    pools = request["customJob"]["jobSpec"]["workerPoolSpecs"]
    for pool in (pools[0], pools[1]):
        env = {e["name"]: e["value"] for e in pool["containerSpec"]["env"]}
        assert env == {"API_TOKEN": REDACTED, "DB_PASSWORD": REDACTED, "BATCH_SIZE": "32"}
    assert pools[2] == {}
    assert request["customJob"]["labels"][SUBMISSION_LABEL] == SUBMISSION


def test_preview_yaml_keeps_request_order_and_placeholder_project() -> None:
    text = VertexJob(image="python:3.11").preview()
    assert text.startswith("parent: projects/<project>/locations/us-central1\ncustomJob:\n")
    assert preview(VertexJob(image="x"), project="gcpjobs-local").startswith(
        "parent: projects/gcpjobs-local/")


def test_preview_unknown_format() -> None:
    with pytest.raises(ValueError, match="'yaml' or 'json'"):
        preview(VertexJob(image="x"), "toml")
