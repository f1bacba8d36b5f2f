"""Cloud Run v1 Job bodies (reference §4.8) -> CloudRunJob, and untranslatable parts named."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import run_v2

from gcpjobs.errors import SpecError
from gcpjobs.protos.cloudrun import build_create_request
from gcpjobs.specs.cloudrun import CloudRunJob, SecretRef
from gcpjobs.specs.cloudrun_v1 import is_v1_job_body, v1_job_to_cloud_run_job
from gcpjobs.specs.jobfile import load_job_file
from gcpjobs.specs.labels import KIND_LABEL, SUBMISSION_LABEL

SUBMISSION = "0123456789abcdef0123456789abcdef"
TASK = "spec.template.spec.template.spec"

# Reference §4.8's typical body, with its placeholders filled in.
BODY_YAML = """
apiVersion: run.googleapis.com/v1
kind: Job
metadata:
  name: nightly-export
  namespace: my-project
  labels:
    cloud.googleapis.com/location: europe-west1
    team: data
  annotations:
    run.googleapis.com/launch-stage: BETA
    run.googleapis.com/creator: someone@example.com
spec:
  template:
    metadata:
      labels: {team: data, tier: batch}
      annotations:
        run.googleapis.com/execution-environment: gen2
        run.googleapis.com/vpc-access-connector: export-conn
        run.googleapis.com/vpc-access-egress: private-ranges-only
    spec:
      parallelism: 5
      taskCount: 10
      template:
        spec:
          maxRetries: 3
          timeoutSeconds: "3600"
          serviceAccountName: exporter@my-project.iam.gserviceaccount.com
          containers:
          - image: europe-docker.pkg.dev/my-project/jobs/export:2
            command: [python, export.py]
            args: [--since, 1d]
            env:
            - {name: TABLE, value: events}
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db-password, key: latest}}
            resources: {limits: {cpu: "2", memory: 4Gi}}
status:
  observedGeneration: 3
"""


def body() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(BODY_YAML)
    return data


def test_recognised_by_api_version_and_kind() -> None:
    assert is_v1_job_body(body())
    assert not is_v1_job_body({**body(), "apiVersion": "run.googleapis.com/v2"})
    assert not is_v1_job_body({"kind": "cloud-run", "image": "x"})
    assert not is_v1_job_body({"apiVersion": "run.googleapis.com/v1", "kind": "Service"})


def test_body_translates_to_the_expected_spec() -> None:
    job = v1_job_to_cloud_run_job(body())
    assert job == CloudRunJob(
        name="nightly-export",
        project="my-project",
        region="europe-west1",
        image="europe-docker.pkg.dev/my-project/jobs/export:2",
        command=["python", "export.py"],
        args=["--since", "1d"],
        env={"TABLE": "events", "DB_PASSWORD": SecretRef(secret="db-password", version="latest")},
        cpu="2",
        memory="4Gi",
        timeout=timedelta(hours=1),
        max_retries=3,
        task_count=10,
        parallelism=5,
        service_account="exporter@my-project.iam.gserviceaccount.com",
        vpc_connector="export-conn",
        vpc_egress="private-ranges-only",
        labels={"team": "data", "tier": "batch"},
        launch_stage="BETA",
        execution_environment="gen2",
    )


def test_body_translates_to_the_expected_request() -> None:
    request = build_create_request(v1_job_to_cloud_run_job(body()), "my-project", SUBMISSION)
    labels = {"team": "data", "tier": "batch", SUBMISSION_LABEL: SUBMISSION,
              KIND_LABEL: "cloud-run"}
    assert request.parent == "projects/my-project/locations/europe-west1"
    assert request.job_id == "nightly-export-01234567"
    assert request.job.labels == labels and request.job.template.labels == labels
    task = request.job.template.template
    assert task.timeout == timedelta(hours=1)
    assert task.vpc_access == run_v2.VpcAccess(
        connector="projects/my-project/locations/europe-west1/connectors/export-conn",
        egress=run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY)
    assert task.containers[0].env[1] == run_v2.EnvVar(
        name="DB_PASSWORD", value_source=run_v2.EnvVarSource(
            secret_key_ref=run_v2.SecretKeySelector(secret="db-password", version="latest")))
    assert task.containers[0].resources.limits == {"cpu": "2", "memory": "4Gi"}


def test_gpu_body() -> None:
    data = body()
    task = data["spec"]["template"]["spec"]["template"]["spec"]
    task["nodeSelector"] = {"run.googleapis.com/accelerator": "nvidia-l4"}
    task["containers"][0]["resources"]["limits"] = {"cpu": "4", "memory": "16Gi",
                                                     "nvidia.com/gpu": "1"}
    task["timeoutSeconds"] = 1800
    job = v1_job_to_cloud_run_job(data)
    assert (job.gpu_type, job.gpu_count, job.cpu) == ("nvidia-l4", 1, "4")


def test_direct_vpc_annotation() -> None:
    data = body()
    annotations = data["spec"]["template"]["metadata"]["annotations"]
    del annotations["run.googleapis.com/vpc-access-connector"]
    annotations["run.googleapis.com/network-interfaces"] = \
        '[{"network":"default","subnetwork":"sub","tags":["batch"]}]'
    job = v1_job_to_cloud_run_job(data)
    assert (job.network, job.subnetwork, job.network_tags) == ("default", "sub", ["batch"])


def test_default_name_is_made_a_valid_job_id() -> None:
    data = body()
    del data["metadata"]["name"]
    assert v1_job_to_cloud_run_job(data, "Nightly_Export").name == "nightly-export"
    assert v1_job_to_cloud_run_job(data).name is None


def test_labels_gcpjobs_set_earlier_are_dropped() -> None:
    data = body()
    data["metadata"]["labels"][SUBMISSION_LABEL] = "old"
    assert SUBMISSION_LABEL not in v1_job_to_cloud_run_job(data).labels


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(body())
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _ga_with_long_timeout() -> dict[str, Any]:
    data = _with(["metadata", "annotations", "run.googleapis.com/launch-stage"], "GA")
    data["spec"]["template"]["spec"]["template"]["spec"]["timeoutSeconds"] = "90000"
    return data


CONTAINER = ["spec", "template", "spec", "template", "spec", "containers", 0]
TASK_PATH = ["spec", "template", "spec", "template", "spec"]
ONE_CONTAINER = body()["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]

# (body, the v1 field the error must name, a fragment of the message)
UNTRANSLATABLE: list[tuple[dict[str, Any], str, str]] = [
    (_with([*TASK_PATH, "containers"], [ONE_CONTAINER, ONE_CONTAINER]),
     f"{TASK}.containers[1]", "several containers cannot be translated"),
    (_with([*TASK_PATH, "volumes"], [{"name": "v"}]), f"{TASK}.volumes", "no volumes"),
    (_with([*CONTAINER, "volumeMounts"], []), f"{TASK}.containers[0].volumeMounts", "remove"),
    (_with([*CONTAINER, "ports"], []), f"{TASK}.containers[0].ports", "cannot be translated"),
    (_with([*CONTAINER, "env", 0], {"name": "A", "valueFrom": {"configMapKeyRef": {}}}),
     f"{TASK}.containers[0].env[0].valueFrom.configMapKeyRef", "only secretKeyRef"),
    (_with([*CONTAINER, "resources", "limits", "ephemeral-storage"], "1Gi"),
     f"{TASK}.containers[0].resources.limits['ephemeral-storage']", "cpu, memory"),
    (_with([*CONTAINER, "resources", "requests"], {"cpu": "1"}),
     f"{TASK}.containers[0].resources.requests", "limits only"),
    (_with(["metadata", "annotations", "run.googleapis.com/binary-authorization"], "default"),
     "metadata.annotations['run.googleapis.com/binary-authorization']",
     "annotation cannot be translated"),
    (_with(["spec", "template", "metadata", "annotations", "run.googleapis.com/cloudsql-instances"],
           "p:r:i"),
     "spec.template.metadata.annotations['run.googleapis.com/cloudsql-instances']",
     "annotation cannot be translated"),
    (_with([*TASK_PATH, "nodeSelector"], {"zone": "a"}), f"{TASK}.nodeSelector.zone",
     "only run.googleapis.com/accelerator"),
    (_with(["spec", "startExecutionToken"], "t"), "spec.startExecutionToken",
     "gcpjobs starts the execution itself"),
    (_with(["spec", "template", "spec", "taskCount"], 0), "spec.template.spec.taskCount",
     "between 1 and 10000"),
    (_with([*TASK_PATH, "timeoutSeconds"], "700000"), f"{TASK}.timeoutSeconds",
     "check the unit"),
    (_ga_with_long_timeout(), f"{TASK}.timeoutSeconds", "Preview feature"),
    (_with(["metadata", "annotations", "run.googleapis.com/launch-stage"], "SOON"),
     "metadata.annotations['run.googleapis.com/launch-stage']", "is not a launch stage"),
    (_with([*CONTAINER, "resources", "limits", "cpu"], "3"),
     f"{TASK}.containers[0].resources.limits.cpu", "use 1, 2, 4 or 8"),
    (_with(["metadata", "labels", "cloud.googleapis.com/location"], "Europe West"),
     "metadata.labels['cloud.googleapis.com/location']", "like us-central1"),
    (_with([*CONTAINER, "env", 1, "valueFrom", "secretKeyRef", "name"], "bad name"),
     f"{TASK}.containers[0].env", "projects/PROJECT/secrets/NAME"),
    (_with(["spec", "template", "metadata", "labels", "team"], "ml"),
     "spec.template.metadata.labels", "make them agree"),
    (_with(["spec", "template", "spec", "template", "spec", "container"], []),
     f"{TASK}.container", "did you mean 'containers'"),
    (_with(["spec", "template", "spec", "template", "spec"], {}), f"{TASK}.containers",
     "give the job's container"),
]


@pytest.mark.parametrize(("data", "field", "fragment"), UNTRANSLATABLE,
                         ids=[f"{row[1]}-{i}" for i, row in enumerate(UNTRANSLATABLE)])
def test_untranslatable_parts_are_named(data: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        v1_job_to_cloud_run_job(data)
    assert caught.value.field == field
    message = str(caught.value)
    assert message.startswith(f"{field}: ")
    assert fragment in message
    assert "\n" not in message


def test_secret_values_are_not_echoed() -> None:
    data = _with([*CONTAINER, "env", 0], {"name": "API_TOKEN", "value": ["hunter2-secret"]})
    with pytest.raises(SpecError) as caught:
        v1_job_to_cloud_run_job(data)
    assert "hunter2-secret" not in str(caught.value)


def test_job_file_with_a_v1_body(tmp_path: Path) -> None:
    path = tmp_path / "export.yaml"
    path.write_text(BODY_YAML, encoding="utf-8")
    job = load_job_file(path)
    assert isinstance(job, CloudRunJob)
    assert job == v1_job_to_cloud_run_job(body())


def test_job_file_errors_name_the_file_and_the_v1_field(tmp_path: Path) -> None:
    path = tmp_path / "export.yaml"
    data = _with([*TASK_PATH, "volumes"], [])
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_job_file(path)
    assert str(caught.value).startswith(f"{path}: {TASK}.volumes: ")
