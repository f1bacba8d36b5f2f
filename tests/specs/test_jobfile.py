"""Job files: `kind: vertex`, gcloud CustomJobSpec, full CustomJob, and one-line errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gcpjobs.errors import JobFileError, SpecError
from gcpjobs.specs.jobfile import load_job_file, parse_job_document
from gcpjobs.specs.vertex import VertexJob


def write(tmp_path: Path, text: str, name: str = "train.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_kind_vertex_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
kind: vertex
name: logistic
image: python:3.11
command: python train.py
args: [--epochs, 5]
env: {BATCH_SIZE: 32}
machine_type: n1-standard-8
accelerator_type: NVIDIA_TESLA_T4
maximum_run_time_hours: 2
labels: {team: ml}
extra_worker_pools:
  - replica_count: 2
""")
    job = load_job_file(path)
    assert isinstance(job, VertexJob)
    assert job.name == "logistic"
    assert job.command == ["python", "train.py"]
    assert job.args == ["--epochs", "5"]
    assert job.env == {"BATCH_SIZE": "32"}
    assert job.accelerator_count == 1
    assert job.maximum_run_time == timedelta(hours=2)
    assert job.extra_worker_pools[0] is not None
    assert job.extra_worker_pools[0].replica_count == 2


def test_kind_vertex_without_name_is_named_after_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: vertex\nimage: python:3.11\n", name="nightly-train.yml")
    assert load_job_file(path).name == "nightly-train"


GCLOUD_CAMEL = """
workerPoolSpecs:
  - machineSpec:
      machineType: n1-standard-4
      acceleratorType: NVIDIA_TESLA_T4
      acceleratorCount: 2
    replicaCount: 1
    diskSpec: {bootDiskType: pd-standard, bootDiskSizeGb: 200}
    containerSpec:
      imageUri: gcr.io/proj/trainer:1
      command: [python, -m, trainer]
      args: [--lr, "0.1"]
      env:
        - {name: MODE, value: train}
  - {}
  - machineSpec: {machineType: n1-standard-8}
    replicaCount: "2"
    containerSpec: {imageUri: gcr.io/proj/ps:1}
scheduling:
  timeout: 3600s
  restartJobOnWorkerRestart: true
  strategy: SPOT
serviceAccount: trainer@proj.iam.gserviceaccount.com
network: projects/123/global/networks/vpc
reservedIpRanges: [range-a]
baseOutputDirectory: {outputUriPrefix: gs://bucket/out}
enableWebAccess: true
"""

GCLOUD_SNAKE = """
worker_pool_specs:
  - machine_spec: {machine_type: n1-standard-4, accelerator_type: NVIDIA_TESLA_T4, accelerator_count: 2}
    replica_count: 1
    disk_spec: {boot_disk_type: pd-standard, boot_disk_size_gb: 200}
    container_spec:
      image_uri: gcr.io/proj/trainer:1
      command: [python, -m, trainer]
      args: [--lr, "0.1"]
      env: [{name: MODE, value: train}]
  - {}
  - machine_spec: {machine_type: n1-standard-8}
    replica_count: 2
    container_spec: {image_uri: gcr.io/proj/ps:1}
scheduling: {timeout: 3600s, restart_job_on_worker_restart: true, strategy: SPOT}
service_account: trainer@proj.iam.gserviceaccount.com
network: projects/123/global/networks/vpc
reserved_ip_ranges: [range-a]
base_output_directory: {output_uri_prefix: gs://bucket/out}
enable_web_access: true
"""


@pytest.mark.parametrize("text", [GCLOUD_CAMEL, GCLOUD_SNAKE], ids=["camelCase", "snake_case"])
def test_gcloud_custom_job_spec(tmp_path: Path, text: str) -> None:
    job = load_job_file(write(tmp_path, text, name="config.yaml"))
    assert job.name == "config"
    assert job.image == "gcr.io/proj/trainer:1"
    assert job.command == ["python", "-m", "trainer"]
    assert job.env == {"MODE": "train"}
    assert (job.accelerator_type, job.accelerator_count) == ("NVIDIA_TESLA_T4", 2)
    assert (job.boot_disk_type, job.boot_disk_size_gb) == ("pd-standard", 200)
    assert job.maximum_run_time == timedelta(hours=1)
    assert job.restart_job_on_worker_restart is True
    assert job.scheduling_strategy == "SPOT"
    assert job.service_account == "trainer@proj.iam.gserviceaccount.com"
    assert job.reserved_ip_ranges == ["range-a"]
    assert job.base_output_directory == "gs://bucket/out"
    assert job.enable_web_access is True
    empty, servers = job.extra_worker_pools
    assert empty is None
    assert servers is not None
    assert (servers.replica_count, servers.machine_type, servers.image) == (
        2, "n1-standard-8", "gcr.io/proj/ps:1")


def test_gcloud_single_mapping_worker_pool(tmp_path: Path) -> None:
    path = write(tmp_path, """
workerPoolSpecs:
  machineSpec: {machineType: e2-standard-4}
  replicaCount: 1
  containerSpec: {imageUri: python:3.11, command: [python, -c, "print(1)"]}
""")
    job = load_job_file(path)
    assert (job.machine_type, job.image) == ("e2-standard-4", "python:3.11")
    assert job.extra_worker_pools == []


def test_full_custom_job_document(tmp_path: Path) -> None:
    path = write(tmp_path, """
name: projects/1/locations/us-central1/customJobs/42
displayName: nightly
state: JOB_STATE_SUCCEEDED
createTime: "2024-01-01T00:00:00Z"
labels: {team: ml, gcpjobs-submission-id: 0123, gcpjobs-kind: vertex}
jobSpec:
  workerPoolSpecs:
    - machineSpec: {machineType: n1-standard-4}
      replicaCount: "1"
      containerSpec: {imageUri: python:3.11}
""")
    job = load_job_file(path)
    assert job.name == "nightly"
    assert job.labels == {"team": "ml"}


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("workerPoolSpecs:\n- machineSpec: {machineType: n1-standart-4}\n"
         "  containerSpec: {imageUri: x}\n",
         "workerPoolSpecs[0].machineSpec.machineType", "did you mean n1-standard-4"),
        ("workerPoolSpecs:\n- pythonPackageSpec: {executorImageUri: x}\n",
         "workerPoolSpecs[0].pythonPackageSpec", "use containerSpec"),
        ("workerPoolSpecs:\n- containerSpec: {imageUri: x}\n  replicaCount: 2\n",
         "workerPoolSpecs[0].replicaCount", "workerPoolSpecs[1]"),
        ("workerPoolSpecs:\n- containerSpec: {imageUri: x}\n  machineSpec: {machineTyp: x}\n",
         "workerPoolSpecs[0].machineSpec.machineTyp", "did you mean 'machineType'"),
        ("workerPoolSpecs:\n- containerSpec: {command: [x]}\n",
         "workerPoolSpecs[0].containerSpec.imageUri", "image URI"),
        ("workerPoolSpecs:\n- {}\n", "workerPoolSpecs[0]", "must not be empty"),
        ("workerPoolSpecs: []\n", "workerPoolSpecs", "primary pool first"),
        ("workerPoolSpecs:\n- containerSpec: {imageUri: x}\n"
         "- containerSpec: {imageUri: y}\n  machineSpec: {machineType: e2-standard-4, "
         "acceleratorType: NVIDIA_TESLA_T4}\n",
         "workerPoolSpecs[1].machineSpec.acceleratorType", "n1-standard-4"),
        ("workerPoolSpecs:\n- containerSpec: {imageUri: x}\nscheduling: {timeout: soon}\n",
         "scheduling.timeout", "'2h'"),
        ("workerPoolSpecs:\n- containerSpec: {imageUri: x}\ntensorboard: t\n",
         "tensorboard", "not supported by gcpjobs yet"),
        ("kind: vertex\nimage: x\nmachine_type: n1-standart-4\n",
         "machine_type", "did you mean n1-standard-4"),
        ("kind: vertex\nimage: x\nmachine: n1-standard-4\n", "machine", "machine_type"),
    ],
)
def test_invalid_documents_name_the_file_and_field(
    tmp_path: Path, text: str, field: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_job_file(path)
    message = str(caught.value)
    assert caught.value.field == field
    assert message.startswith(f"{path}: {field}: ")
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("kind: vertex\nimage: [unclosed\n", "not valid YAML at line 3, column 1"),
        ("kind: vertex\n  image: x\n bad: : :\n", "not valid YAML at line 2"),
        ("- a\n- b\n", "must be a mapping of fields, not a list"),
        ("", "is empty"),
        ("kind: batch\nimage: x\n", "unknown kind 'batch'; use one of: cloud-run, vertex"),
        ("kind: Job\nimage: x\n", "apiVersion: run.googleapis.com/v1"),
        ("image: x\n", "has no `kind`; start it with `kind: vertex`"),
    ],
)
def test_unreadable_documents(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(JobFileError) as caught:
        load_job_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match=r"nope\.yaml: no such file; check the path$"):
        load_job_file(tmp_path / "nope.yaml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="is a directory"):
        load_job_file(tmp_path)


def test_parse_document_uses_the_source_in_errors() -> None:
    with pytest.raises(SpecError, match=r"^<stdin>: boot_disk_size_gb: "):
        parse_job_document({"kind": "vertex", "image": "x", "boot_disk_size_gb": 1},
                           source="<stdin>")


def test_a_new_kind_is_registered_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from gcpjobs.specs import jobfile

    monkeypatch.setitem(jobfile.KIND_PARSERS, "test-kind",
                        lambda document, name: VertexJob(image=document["image"], name=name))
    job = parse_job_document({"kind": "test-kind", "image": "x"}, source="s", default_name="n")
    assert (job.image, job.name) == ("x", "n")
