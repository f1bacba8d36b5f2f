"""CloudRunJob: defaults, accepted input forms, derived values, and `kind: cloud-run` files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import gcpjobs
from gcpjobs.errors import SpecError
from gcpjobs.specs.cloudrun import CloudRunJob, SecretRef, suggest_job_name
from gcpjobs.specs.jobfile import load_job_file, parse_job_document

IMAGE = "python:3.11"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cloudrun"


def test_defaults_follow_cloud_run() -> None:
    job = CloudRunJob(image=IMAGE)
    assert job.kind == "cloud-run"
    assert job.name is None
    assert job.region == "us-central1"
    assert job.project is None
    assert job.command == [] and job.args == [] and job.env == {}
    assert job.cpu is None and job.memory is None  # the service's defaults
    assert job.timeout == timedelta(seconds=600)
    assert job.max_retries == 3
    assert job.task_count == 1
    assert job.parallelism == 0
    assert job.gpu_type is None and job.gpu_count is None
    assert job.keep_job is False
    assert job.labels == {} and job.network_tags == []
    assert job.launch_stage is None and job.execution_environment is None
    assert job.vpc_connector is None and job.vpc_egress is None


def test_public_names() -> None:
    assert gcpjobs.CloudRunJob is CloudRunJob
    assert gcpjobs.SecretRef is SecretRef
    assert {"CloudRunJob", "SecretRef"} <= set(gcpjobs.__all__)


def test_command_as_text_is_split_and_scalars_become_text() -> None:
    job = CloudRunJob(image=IMAGE, command="python -c 'print(1)'", args=["--n", 5],
                      name="job-7", env={"N": 5, "ON": True})
    assert job.command == ["python", "-c", "print(1)"]
    assert job.args == ["--n", "5"]
    assert job.env == {"N": "5", "ON": "true"}


@pytest.mark.parametrize(("cpu", "expected"), [
    (1, "1"), ("2", "2"), (4.0, "4"), ("8", "8"), ("1000m", "1"), ("4000m", "4"), (" 2 ", "2"),
])
def test_cpu_forms(cpu: object, expected: str) -> None:
    assert CloudRunJob(image=IMAGE, cpu=cpu, memory="4Gi").cpu == expected


@pytest.mark.parametrize(("cpu", "memory"), [
    (None, "512Mi"), (None, "4Gi"), ("2", "8Gi"), ("4", "2Gi"), ("4", "16Gi"), ("8", "4Gi"),
    ("8", "32Gi"), ("1", "1G"), ("2", "1.5Gi"),
])
def test_memory_within_what_the_cpu_allows(cpu: str | None, memory: str) -> None:
    job = CloudRunJob(image=IMAGE, cpu=cpu, memory=memory)
    assert job.memory == memory


def test_env_forms_mapping_and_api_list() -> None:
    mapping = CloudRunJob(image=IMAGE, env={
        "PLAIN": "x",
        "DB_PASSWORD": {"secret": "db-password"},
        "OTHER": {"secret": "projects/shared-proj/secrets/api", "version": 4},
        "REF": SecretRef(secret="ref", version="stable"),
    })
    listed = CloudRunJob(image=IMAGE, env=[
        {"name": "PLAIN", "value": "x"},
        {"name": "DB_PASSWORD", "value_source": {"secret_key_ref": {"secret": "db-password"}}},
        {"name": "OTHER", "valueSource": {"secretKeyRef": {
            "secret": "projects/shared-proj/secrets/api", "version": "4"}}},
        {"name": "REF", "value_source": {"secret_key_ref": {"secret": "ref",
                                                            "version": "stable"}}},
    ])
    assert mapping.env == listed.env
    assert mapping.env["DB_PASSWORD"] == SecretRef(secret="db-password", version="latest")
    assert mapping.env["OTHER"] == SecretRef(secret="projects/shared-proj/secrets/api",
                                             version="4")
    assert mapping.plain_env() == {"PLAIN": "x"}


@pytest.mark.parametrize(("given", "expected"), [
    ("all-traffic", "all-traffic"), ("ALL_TRAFFIC", "all-traffic"),
    ("PRIVATE_RANGES_ONLY", "private-ranges-only"), ("private-ranges-only", "private-ranges-only"),
])
def test_vpc_egress_accepts_the_api_enum_names(given: str, expected: str) -> None:
    job = CloudRunJob(image=IMAGE, vpc_connector="conn", vpc_egress=given)
    assert job.vpc_egress == expected


@pytest.mark.parametrize(("given", "expected"), [
    ("gen1", "gen1"), ("GEN2", "gen2"), ("EXECUTION_ENVIRONMENT_GEN2", "gen2"),
])
def test_execution_environment_forms(given: str, expected: str) -> None:
    assert CloudRunJob(image=IMAGE, execution_environment=given).execution_environment == expected


def test_gpu_count_is_filled_in_and_follows_the_type() -> None:
    job = CloudRunJob(image=IMAGE, gpu_type="NVIDIA_L4", cpu=4, memory="16Gi", timeout="1h")
    assert job.gpu_type == "nvidia-l4"
    assert job.gpu_count == 1
    # Derived, not given: removing the GPU removes its count too.
    without = job.with_overrides(gpu_type=None)
    assert without.gpu_count is None
    assert "gpu_count" not in job.model_dump(exclude_unset=True)


def test_direct_vpc_egress() -> None:
    job = CloudRunJob(image=IMAGE, network="default", subnetwork="projects/p/regions/"
                      "us-central1/subnetworks/sub", network_tags=["batch"],
                      vpc_egress="all-traffic")
    assert job.network_tags == ["batch"]


def test_labels_are_sanitised_like_vertex() -> None:
    job = CloudRunJob(image=IMAGE, labels={"Team": "ML Platform", "2fast": 1})
    assert job.labels == {"team": "ml-platform", "x-2fast": "1"}


@pytest.mark.parametrize(("name", "expected"), [
    ("train_model", "train-model"), ("My Job!", "my-job"), ("2024-export", "export"),
    ("___", "gcpjobs-job"), ("x" * 80, "x" * 57),
])
def test_suggest_job_name(name: str, expected: str) -> None:
    assert suggest_job_name(name) == expected
    CloudRunJob(image=IMAGE, name=suggest_job_name(name))  # always valid


def test_preview_method_delegates_to_the_request_module() -> None:
    text = CloudRunJob(image=IMAGE, name="hello", project="my-project").preview()
    assert "parent: projects/my-project/locations/us-central1" in text
    assert "jobId: hello-" in text


# -- job files -------------------------------------------------------------------------------


def test_kind_cloud_run_file(tmp_path: Path) -> None:
    path = tmp_path / "nightly_export.yaml"
    path.write_text("""
kind: cloud-run
image: us-docker.pkg.dev/p/r/export:1
command: python export.py
task_count: 10
parallelism: 3
cpu: 2
memory: 1Gi
timeout: 30m
env:
  TABLE: events
  DB_PASSWORD: {secret: db-password, version: 2}
labels: {team: data}
""", encoding="utf-8")
    job = load_job_file(path)
    assert isinstance(job, CloudRunJob)
    assert job.name == "nightly-export"  # from the file name, made a valid job id
    assert job.command == ["python", "export.py"]
    assert (job.task_count, job.parallelism, job.cpu, job.memory) == (10, 3, "2", "1Gi")
    assert job.timeout == timedelta(minutes=30)
    assert job.env["DB_PASSWORD"] == SecretRef(secret="db-password", version="2")


def test_kind_cloud_run_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("kind: cloud-run\nimage: x\ntask_count: 0\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_job_file(path)
    assert caught.value.field == "task_count"
    assert str(caught.value).startswith(f"{path}: task_count: must be between 1 and 10000")


def test_explicit_name_in_a_file_is_not_rewritten() -> None:
    with pytest.raises(SpecError, match=r"^<stdin>: name: 'My_Job' is not a Cloud Run job name"):
        parse_job_document({"kind": "cloud-run", "image": "x", "name": "My_Job"},
                           source="<stdin>", default_name="fine")


@pytest.mark.parametrize("example", ["job.yaml", "v1-job.yaml"])
def test_examples_load(example: str) -> None:
    job = load_job_file(EXAMPLES / example)
    assert isinstance(job, CloudRunJob)
    assert job.command[0] == "python"
    assert job.task_count > 1


def test_vertex_files_still_load_as_vertex(tmp_path: Path) -> None:
    from gcpjobs.specs.vertex import VertexJob

    job = parse_job_document({"kind": "vertex", "image": "x"}, source="t")
    assert isinstance(job, VertexJob)


def test_the_spec_layer_does_not_import_the_run_v2_types() -> None:
    import subprocess
    import sys

    code = ("import sys, gcpjobs.specs.jobfile, gcpjobs.specs.cloudrun_v1; "
            "print('google.cloud.run_v2' in sys.modules, 'google.cloud.aiplatform_v1' in "
            "sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.split() == ["False", "False"]


def test_example_previews() -> None:
    for example in ("job.yaml", "v1-job.yaml"):
        job = load_job_file(EXAMPLES / example)
        assert "CLOUD_RUN_TASK_INDEX" in job.preview()
