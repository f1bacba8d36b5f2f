"""CloudRunJob -> run_v2 CreateJobRequest, job ids, and the redacted preview."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from google.api import launch_stage_pb2
from google.cloud import run_v2

from gcpjobs.errors import SpecError
from gcpjobs.protos.cloudrun import (
    build_create_request,
    build_job,
    job_id_for,
    new_submission_id,
    parent_for,
    preview,
    request_to_dict,
)
from gcpjobs.specs.cloudrun import MAX_JOB_NAME_LENGTH, CloudRunJob, SecretRef
from gcpjobs.specs.labels import KIND_LABEL, SUBMISSION_LABEL
from gcpjobs.specs.secrets import REDACTED

SUBMISSION = "0123456789abcdef0123456789abcdef"
LABELS = {"team": "ml", SUBMISSION_LABEL: SUBMISSION, KIND_LABEL: "cloud-run"}


def full_job() -> CloudRunJob:
    return CloudRunJob(
        name="shard-sum",
        project="my-project",
        region="europe-west4",
        image="europe-docker.pkg.dev/p/r/app:1",
        command="python main.py",
        args=["--rows", 1000],
        env={"API_TOKEN": "tok-XYZ-123", "ROWS": "1000",
             "DB_PASSWORD": {"secret": "db-password", "version": "3"}},
        cpu=4,
        memory="16Gi",
        timeout="45m",
        max_retries=0,
        task_count=8,
        parallelism=2,
        service_account="runner@my-project.iam.gserviceaccount.com",
        vpc_connector="conn",
        vpc_egress="ALL_TRAFFIC",
        labels={"Team": "ML"},
        gpu_type="nvidia-l4",
        launch_stage="beta",
        execution_environment="gen2",
    )


def expected_full_job() -> run_v2.Job:
    return run_v2.Job(
        labels=LABELS,
        launch_stage=launch_stage_pb2.LaunchStage.BETA,
        template=run_v2.ExecutionTemplate(
            labels=LABELS,
            parallelism=2,
            task_count=8,
            template=run_v2.TaskTemplate(
                containers=[run_v2.Container(
                    image="europe-docker.pkg.dev/p/r/app:1",
                    command=["python", "main.py"],
                    args=["--rows", "1000"],
                    env=[
                        run_v2.EnvVar(name="API_TOKEN", value="tok-XYZ-123"),
                        run_v2.EnvVar(name="ROWS", value="1000"),
                        run_v2.EnvVar(name="DB_PASSWORD", value_source=run_v2.EnvVarSource(
                            secret_key_ref=run_v2.SecretKeySelector(secret="db-password",
                                                                    version="3"))),
                    ],
                    resources=run_v2.ResourceRequirements(
                        limits={"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}),
                )],
                max_retries=0,
                timeout=timedelta(minutes=45),
                service_account="runner@my-project.iam.gserviceaccount.com",
                execution_environment=run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2,
                vpc_access=run_v2.VpcAccess(
                    connector="projects/my-project/locations/europe-west4/connectors/conn",
                    egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC),
                node_selector=run_v2.NodeSelector(accelerator="nvidia-l4"),
            ),
        ),
    )


def test_full_job_is_mapped_field_by_field() -> None:
    assert build_job(full_job(), SUBMISSION) == expected_full_job()


def test_create_request() -> None:
    request = build_create_request(full_job(), "my-project", SUBMISSION)
    assert request == run_v2.CreateJobRequest(
        parent="projects/my-project/locations/europe-west4",
        job=expected_full_job(),
        job_id="shard-sum-01234567",
    )
    assert request.job.name == ""  # CreateJob takes the id as job_id


def test_minimal_job_leaves_service_defaults_unset() -> None:
    job = build_job(CloudRunJob(image="python:3.11"), SUBMISSION)
    labels = {SUBMISSION_LABEL: SUBMISSION, KIND_LABEL: "cloud-run"}
    assert job == run_v2.Job(
        labels=labels,
        template=run_v2.ExecutionTemplate(
            labels=labels, task_count=1, parallelism=0,
            template=run_v2.TaskTemplate(
                containers=[run_v2.Container(image="python:3.11")],
                max_retries=3,
                timeout=timedelta(seconds=600),
            ),
        ),
    )
    task = job.template.template
    assert "resources" not in task.containers[0]
    assert "vpc_access" not in task and "node_selector" not in task
    assert job.launch_stage == launch_stage_pb2.LaunchStage.LAUNCH_STAGE_UNSPECIFIED


def test_zero_retries_is_sent_explicitly() -> None:
    # max_retries sits in a oneof: an explicit 0 must not read as "unset" (which means 3).
    job = build_job(CloudRunJob(image="x", max_retries=0), SUBMISSION)
    data = request_to_dict(run_v2.CreateJobRequest(job=job))
    assert data["job"]["template"]["template"]["maxRetries"] == 0


def test_direct_vpc_egress_is_one_network_interface() -> None:
    job = CloudRunJob(image="x", network="default", subnetwork="sub", network_tags=["batch"],
                      vpc_egress="private-ranges-only")
    assert build_job(job, SUBMISSION).template.template.vpc_access == run_v2.VpcAccess(
        network_interfaces=[run_v2.VpcAccess.NetworkInterface(
            network="default", subnetwork="sub", tags=["batch"])],
        egress=run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY,
    )


def test_connector_path_is_kept_when_given_in_full_or_without_a_project() -> None:
    full = "projects/other/locations/us-east1/connectors/c"
    assert build_job(CloudRunJob(image="x", vpc_connector=full), SUBMISSION) \
        .template.template.vpc_access.connector == full
    assert build_job(CloudRunJob(image="x", vpc_connector="c"), SUBMISSION) \
        .template.template.vpc_access.connector == "c"
    request = build_create_request(CloudRunJob(image="x", vpc_connector="c"), "p-123456",
                                   SUBMISSION)
    assert request.job.template.template.vpc_access.connector == \
        "projects/p-123456/locations/us-central1/connectors/c"


def test_bad_submission_id_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be a label value"):
        build_job(CloudRunJob(image="x"), "Not A Label!")


# -- job ids --------------------------------------------------------------------------------


def test_job_id_is_fresh_per_submission() -> None:
    job = CloudRunJob(image="x", name="train")
    assert job_id_for(job, SUBMISSION) == "train-01234567"
    assert job_id_for(CloudRunJob(image="x"), SUBMISSION) == "gcpjobs-job-01234567"
    ids = {job_id_for(job, new_submission_id()) for _ in range(50)}
    assert len(ids) == 50


def test_long_names_are_cut_to_fit_and_never_end_in_a_double_hyphen() -> None:
    name = "a" * 47 + "-" + "b" * 9  # 57 characters, the longest allowed
    job_id = job_id_for(CloudRunJob(image="x", name=name), SUBMISSION)
    assert len(job_id) <= MAX_JOB_NAME_LENGTH
    assert job_id == "a" * 47 + "-01234567"
    CloudRunJob(image="x", name=job_id)  # still a valid job name


def test_keep_job_uses_the_name_as_given() -> None:
    job = CloudRunJob(image="x", name="nightly", keep_job=True)
    assert job_id_for(job, SUBMISSION) == "nightly"
    assert build_create_request(job, "my-project", SUBMISSION).job_id == "nightly"


def test_keep_job_needs_a_name() -> None:
    with pytest.raises(SpecError) as caught:
        job_id_for(CloudRunJob(image="x", keep_job=True), SUBMISSION)
    assert caught.value.field == "name"
    assert "keep_job" in str(caught.value)


def test_parent_for() -> None:
    assert parent_for("p", "us-east1") == "projects/p/locations/us-east1"


# -- preview --------------------------------------------------------------------------------


def test_preview_yaml_redacts_plain_secrets_and_shows_secret_refs() -> None:
    text = preview(full_job(), submission_id=SUBMISSION)
    assert "tok-XYZ-123" not in text
    data = yaml.safe_load(text)
    assert list(data) == ["parent", "job", "jobId"]
    assert data["parent"] == "projects/my-project/locations/europe-west4"
    assert data["jobId"] == "shard-sum-01234567"
    env = data["job"]["template"]["template"]["containers"][0]["env"]
    assert env == [
        {"name": "API_TOKEN", "value": REDACTED},
        {"name": "ROWS", "value": "1000"},
        {"name": "DB_PASSWORD",
         "valueSource": {"secretKeyRef": {"secret": "db-password", "version": "3"}}},
    ]


def test_preview_json_is_the_request_in_proto3_json() -> None:
    job = full_job()
    data = json.loads(preview(job, "json", submission_id=SUBMISSION))
    expected = request_to_dict(build_create_request(job, "my-project", SUBMISSION))
    assert data == expected
    assert data["job"]["template"]["taskCount"] == 8
    assert data["job"]["template"]["template"]["timeout"] == "2700s"
    assert data["job"]["launchStage"] == "BETA"


def test_preview_project_placeholder_and_override() -> None:
    job = CloudRunJob(image="x", name="j")
    assert yaml.safe_load(preview(job))["parent"] == "projects/<project>/locations/us-central1"
    assert yaml.safe_load(preview(job, project="other-proj"))["parent"] == \
        "projects/other-proj/locations/us-central1"


def test_preview_keeps_inline_scripts_readable() -> None:
    job = CloudRunJob(image="x", command=["python", "-c"], args=["import os\nprint(1)\n"])
    assert "- |\n" in preview(job)


def test_preview_unknown_format() -> None:
    with pytest.raises(ValueError, match="use 'yaml' or 'json'"):
        preview(CloudRunJob(image="x"), "toml")


def test_secret_ref_values_are_not_redacted_even_with_secret_names() -> None:
    job = CloudRunJob(image="x", env={"SECRET_KEY": SecretRef(secret="signing-key")})
    data = yaml.safe_load(preview(job))
    env = data["job"]["template"]["template"]["containers"][0]["env"]
    assert env == [{"name": "SECRET_KEY", "valueSource": {"secretKeyRef": {
        "secret": "signing-key", "version": "latest"}}}]
