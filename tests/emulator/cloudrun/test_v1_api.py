"""Cloud Run Admin API v1 (what gcloud and prefect-gcp's `cloud-run` worker speak) over REST,
sharing one store with v2: bodies in gcloud's shapes read back identically through v1 and
equivalently through the official `run_v2` client.

Requests go as gcloud sends them: through the emulator as an HTTP proxy (absolute form) to the
regional host `us-central1-127.0.0.1:PORT` that gcloud derives from its endpoint override.
"""

from __future__ import annotations

import copy
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from google.api import launch_stage_pb2
from google.cloud import run_v2

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import PROJECT, RunClients, run_clients
from tests.waiting import wait_for

V1 = f"/apis/run.googleapis.com/v1/namespaces/{PROJECT}"


class V1Client:
    """Plain HTTP, the way gcloud's apitools client sends it (through a proxy, regional host)."""

    def __init__(self, server: EmulatorProcess, region: str | None = "us-central1") -> None:
        self.proxy = server.rest_endpoint
        address = server.rest_endpoint.removeprefix("http://")
        self.base = f"http://{region}-{address}" if region else server.rest_endpoint
        self.session = requests.Session()

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}{V1}{path}", json=body,
                                    params=params or None, timeout=30,
                                    proxies={"http": self.proxy})

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        response = self.call(method, path, body, **params)
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document


@pytest.fixture()
def v1(emulator: EmulatorProcess) -> Iterator[V1Client]:
    client = V1Client(emulator)
    yield client
    client.session.close()


@pytest.fixture()
def rest_run(emulator: EmulatorProcess) -> Iterator[RunClients]:
    clients = run_clients(emulator, "rest")
    yield clients
    clients.close()


def gcloud_body(name: str) -> dict[str, Any]:
    """What `gcloud run jobs create` sends (captured with --log-http), with more of the fields
    it can set: parallelism, a secret, limits, a service account, template annotations."""
    return {
        "apiVersion": "run.googleapis.com/v1", "kind": "Job",
        "metadata": {
            "annotations": {"run.googleapis.com/client-name": "gcloud",
                            "run.googleapis.com/client-version": "528.0.0"},
            "labels": {"team": "x"}, "name": name, "namespace": PROJECT,
        },
        "spec": {"template": {
            "metadata": {
                "annotations": {"run.googleapis.com/client-name": "gcloud",
                                "run.googleapis.com/client-version": "528.0.0",
                                "run.googleapis.com/execution-environment": "gen2",
                                "run.googleapis.com/vpc-access-connector": "conn",
                                "run.googleapis.com/vpc-access-egress": "all-traffic"},
                "labels": {"client.knative.dev/nonce": "tus_fix_cep", "team": "x"},
            },
            "spec": {"taskCount": 2, "parallelism": 1, "template": {"spec": {
                "containers": [{
                    "args": ["-c", "echo hi"], "command": ["sh"], "name": "",
                    "env": [{"name": "A", "value": "1"},
                            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec",
                                                                         "key": "2"}}}],
                    "image": "us-docker.pkg.dev/x/y:latest",
                    "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
                }],
                "maxRetries": 0, "nodeSelector": {}, "timeoutSeconds": "60",
                "serviceAccountName": "sa@gcpjobs-test.iam.gserviceaccount.com",
            }}},
        }},
        "status": {"latestCreatedExecution": {}},
    }


def pruned(value: Any) -> Any:
    """Without empty values (which proto3 JSON, and so the real service, leaves out)."""
    if isinstance(value, dict):
        kept = {key: pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ("", [], {}, None)}
    if isinstance(value, list):
        return [pruned(item) for item in value]
    return value


def expected_read_back(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata and spec a v1 read must show for `body`: the same, plus the location label;
    less gcloud's nonce (a Knative revision trigger; jobs have no revisions)."""
    sent = pruned(copy.deepcopy(body))
    sent["metadata"]["labels"]["cloud.googleapis.com/location"] = "us-central1"
    del sent["spec"]["template"]["metadata"]["labels"]["client.knative.dev/nonce"]
    return sent["metadata"], sent["spec"]


def test_a_gcloud_body_reads_back_identically_through_v1_and_equivalently_through_v2(
    v1: V1Client, rest_run: RunClients
) -> None:
    name = f"v1-{uuid.uuid4().hex[:8]}"
    body = gcloud_body(name)
    created = v1.ok("POST", "/jobs", body)
    metadata, spec = expected_read_back(body)
    for read in (created, v1.ok("GET", f"/jobs/{name}")):
        assert read["apiVersion"] == "run.googleapis.com/v1" and read["kind"] == "Job"
        assert read["spec"] == spec
        assert {key: read["metadata"][key] for key in metadata} == metadata
        assert read["metadata"]["selfLink"] == f"{V1}/jobs/{name}"
        assert {"type": "Ready", "status": "True"}.items() <= read["status"]["conditions"][0].items()
        assert read["status"]["observedGeneration"] == read["metadata"]["generation"] == 1

    job = rest_run.jobs.get_job(name=f"projects/{PROJECT}/locations/us-central1/jobs/{name}")
    assert dict(job.labels) == {"team": "x"} and dict(job.template.labels) == {"team": "x"}
    assert (job.client, job.client_version) == ("gcloud", "528.0.0")
    assert (job.template.task_count, job.template.parallelism) == (2, 1)
    task = job.template.template
    assert task.max_retries == 0 and task.timeout == timedelta(seconds=60)
    assert task.service_account == "sa@gcpjobs-test.iam.gserviceaccount.com"
    assert task.execution_environment == run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    assert task.vpc_access.connector == "conn"
    assert task.vpc_access.egress == run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC
    (container,) = task.containers
    assert (container.image, list(container.command), list(container.args)) == (
        "us-docker.pkg.dev/x/y:latest", ["sh"], ["-c", "echo hi"])
    assert dict(container.resources.limits) == {"cpu": "1", "memory": "512Mi"}
    assert container.env[0].value == "1"
    assert (container.env[1].value_source.secret_key_ref.secret,
            container.env[1].value_source.secret_key_ref.version) == ("sec", "2")

    # A change through v2 is the v1 resource's change; a v1 replace is v2's.
    task.containers[0].args = ["-c", "echo changed"]
    rest_run.jobs.update_job(job=job).result(timeout=10)
    read = v1.ok("GET", f"/jobs/{name}")
    assert read["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "-c", "echo changed"]
    read["spec"]["template"]["spec"]["taskCount"] = 3
    replaced = v1.ok("PUT", f"/jobs/{name}", read)
    assert replaced["metadata"]["generation"] == 3
    assert rest_run.jobs.get_job(name=job.name).template.task_count == 3

    listed = v1.ok("GET", "/jobs", labelSelector="team = x")
    assert name in [item["metadata"]["name"] for item in listed["items"]]
    assert listed["kind"] == "JobsList"
    assert name not in [item["metadata"]["name"] for item in
                        v1.ok("GET", "/jobs", labelSelector="team notin (x)")["items"]]
    assert v1.ok("DELETE", f"/jobs/{name}")["status"] == "Success"
    assert v1.call("GET", f"/jobs/{name}").status_code == 404


def within(sent: Any, read: Any) -> bool:
    """Whether every value of `sent` is in `read` as it was sent (`read` may hold more)."""
    if isinstance(sent, dict):
        return isinstance(read, dict) and all(key in read and within(value, read[key])
                                              for key, value in sent.items())
    if isinstance(sent, list):
        return (isinstance(read, list) and len(sent) == len(read)
                and all(within(a, b) for a, b in zip(sent, read, strict=True)))
    return bool(sent == read)


def prefect_gcp_body(name: str) -> dict[str, Any]:
    """prefect-gcp 0.6.22's `cloud-run` worker's default job body (workers/cloud_run.py,
    `_get_default_job_body_template`) as it renders it for a flow run."""
    return {
        "apiVersion": "run.googleapis.com/v1", "kind": "Job",
        "metadata": {"name": name,
                     "annotations": {"run.googleapis.com/launch-stage": "BETA"}},
        "spec": {"template": {
            "spec": {"template": {"spec": {
                "containers": [{
                    "image": "docker.io/prefecthq/prefect:3-latest",
                    "command": ["prefect", "flow-run", "execute"],
                    "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"},
                                  "requests": {"cpu": "1000m", "memory": "512Mi"}},
                }],
                "timeoutSeconds": 600,
                "serviceAccountName": "flows@gcpjobs-test.iam.gserviceaccount.com",
            }}},
            "metadata": {"annotations": {
                "run.googleapis.com/vpc-access-connector": "conn"}},
        }},
    }


def test_a_prefect_gcp_body_reads_back_through_v1_and_equivalently_through_v2(
    v1: V1Client, rest_run: RunClients
) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    body = prefect_gcp_body(name)
    v1.ok("POST", "/jobs", body)
    read = v1.ok("GET", f"/jobs/{name}")
    # Everything sent reads back as sent, less `resources.requests` (v2 has no place for it
    # and Cloud Run jobs enforce none); a number of seconds reads back as v1's string. What
    # the body leaves out is filled in with the service's defaults, as a real read shows.
    expected = copy.deepcopy(body["spec"])
    task_spec = expected["template"]["spec"]["template"]["spec"]
    del task_spec["containers"][0]["resources"]["requests"]
    task_spec["timeoutSeconds"] = "600"
    assert within(expected, read["spec"])
    defaults = read["spec"]["template"]["spec"]
    assert (defaults["taskCount"], defaults["template"]["spec"]["maxRetries"]) == (1, 3)
    assert read["metadata"]["annotations"]["run.googleapis.com/launch-stage"] == "BETA"

    job = rest_run.jobs.get_job(name=f"projects/{PROJECT}/locations/us-central1/jobs/{name}")
    assert job.launch_stage == launch_stage_pb2.LaunchStage.BETA
    task = job.template.template
    (container,) = task.containers
    assert list(container.command) == ["prefect", "flow-run", "execute"]
    assert dict(container.resources.limits) == {"cpu": "1000m", "memory": "512Mi"}
    assert task.timeout == timedelta(seconds=600)
    assert task.service_account == "flows@gcpjobs-test.iam.gserviceaccount.com"
    assert task.vpc_access.connector == "conn"
    assert v1.ok("DELETE", f"/jobs/{name}")["status"] == "Success"


def test_run_executions_and_tasks_through_v1_match_v2(v1: V1Client, rest_run: RunClients) -> None:
    name = f"v1-{uuid.uuid4().hex[:8]}"
    body = gcloud_body(name)
    task_spec = body["spec"]["template"]["spec"]["template"]["spec"]
    task_spec["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    task_spec["containers"][0]["args"] = ["-c", "exit 3"]
    del body["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/vpc-access-connector"]
    del body["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/vpc-access-egress"]
    v1.ok("POST", "/jobs", body)
    overrides = {"overrides": {"taskCount": 1, "containerOverrides": [{"args": ["-c", "echo ok"]}]}}
    started = [v1.ok("POST", f"/jobs/{name}:run", overrides), v1.ok("POST", f"/jobs/{name}:run")]
    assert started[0]["kind"] == "Execution"
    assert started[0]["metadata"]["labels"]["run.googleapis.com/job"] == name

    def completed(execution_id: str) -> dict[str, Any] | None:
        execution = v1.ok("GET", f"/executions/{execution_id}")
        done = [c for c in execution["status"]["conditions"]
                if c["type"] == "Completed" and c["status"] != "Unknown"]
        return execution if done else None

    good, bad = (wait_for(lambda e=e: completed(e["metadata"]["name"]), timeout=60)
                 for e in started)
    assert good["spec"]["taskCount"] == 1 and good["status"]["succeededCount"] == 1
    assert {c["type"]: c["status"] for c in good["status"]["conditions"]}["Completed"] == "True"
    failed = next(c for c in bad["status"]["conditions"] if c["type"] == "Completed")
    assert (failed["status"], failed["reason"], failed["severity"]) == (
        "False", "NonZeroExitCode", "Error")
    assert bad["status"]["failedCount"] == 2

    v2 = rest_run.executions.get_execution(
        name=f"projects/{PROJECT}/locations/us-central1/jobs/{name}/executions/"
             f"{good['metadata']['name']}")
    assert good["metadata"]["uid"] == v2.uid and good["status"]["completionTime"]
    assert list(v2.template.containers[0].args) == ["-c", "echo ok"]

    # labelSelector and limit/continue paging, as gcloud's executions list pages.
    selector = f"run.googleapis.com/job = {name}"
    first = v1.ok("GET", "/executions", labelSelector=selector, limit=1)
    second = v1.ok("GET", "/executions", labelSelector=selector, limit=1,
                   **{"continue": first["metadata"]["continue"]})
    assert "continue" not in second["metadata"]
    assert {first["items"][0]["metadata"]["name"], second["items"][0]["metadata"]["name"]} == {
        e["metadata"]["name"] for e in started}

    tasks = v1.ok("GET", "/tasks",
                  labelSelector=f"run.googleapis.com/execution = {bad['metadata']['name']}")
    assert [t["status"]["index"] for t in tasks["items"]] == [0, 1]
    task = tasks["items"][0]
    assert task["metadata"]["labels"]["run.googleapis.com/runningState"] == "Failed"
    assert task["status"]["lastAttemptResult"]["exitCode"] == 3
    assert v1.ok("GET", f"/tasks/{task['metadata']['name']}")["metadata"]["uid"] == \
        task["metadata"]["uid"]
    assert v1.ok("GET", "/tasks", labelSelector=(
        f"run.googleapis.com/execution = {bad['metadata']['name']},"
        "run.googleapis.com/runningState in (Succeeded)"))["items"] == []

    assert v1.ok("DELETE", f"/executions/{bad['metadata']['name']}")["status"] == "Success"
    assert v1.call("GET", f"/executions/{bad['metadata']['name']}").status_code == 404


def test_a_v2_job_reads_through_v1_and_cancel_stops_its_execution(
    v1: V1Client, rest_run: RunClients
) -> None:
    name = f"v2-{uuid.uuid4().hex[:8]}"
    job = run_v2.Job(template={"template": {"containers": [{
        "image": "img:1", "command": ["sleep", "60"]}], "max_retries": 0}})
    rest_run.jobs.create_job(parent=f"projects/{PROJECT}/locations/us-central1", job=job,
                             job_id=name).result(timeout=10)
    read = v1.ok("GET", f"/jobs/{name}")
    task = read["spec"]["template"]["spec"]["template"]["spec"]
    assert task["containers"] == [{"image": "img:1", "command": ["sleep", "60"]}]
    assert (task["maxRetries"], task["timeoutSeconds"]) == (0, "600")  # the service's default
    execution = v1.ok("POST", f"/jobs/{name}:run")
    cancelled = v1.ok("POST", f"/executions/{execution['metadata']['name']}:cancel")
    assert cancelled["metadata"]["name"] == execution["metadata"]["name"]
    v2_name = f"projects/{PROJECT}/locations/us-central1/jobs/{name}/executions/" \
              f"{execution['metadata']['name']}"
    done = wait_for(lambda: "completion_time" in rest_run.executions.get_execution(name=v2_name),
                    timeout=60)
    assert done and rest_run.executions.get_execution(name=v2_name).cancelled_count == 1


def test_errors_are_google_v1_errors(v1: V1Client) -> None:
    missing = v1.call("GET", "/jobs/no-such-job")
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    assert missing.json()["error"]["code"] == 404
    name = f"v1-{uuid.uuid4().hex[:8]}"
    v1.ok("POST", "/jobs", gcloud_body(name))
    again = v1.call("POST", "/jobs", gcloud_body(name))
    assert (again.status_code, again.json()["error"]["status"]) == (409, "ALREADY_EXISTS")
    body = gcloud_body(f"v1-{uuid.uuid4().hex[:8]}")
    body["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["stdin"] = True
    unknown = v1.call("POST", "/jobs", body)
    assert unknown.status_code == 400
    assert "job.spec.template.spec.template.spec.containers[0]" in unknown.json()["error"]["message"]
    selector = v1.call("GET", "/jobs", labelSelector="team in (x")
    assert (selector.status_code, selector.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")
    v1.ok("DELETE", f"/jobs/{name}")


def test_the_global_host_spans_regions(emulator: EmulatorProcess) -> None:
    name = f"v1-{uuid.uuid4().hex[:8]}"
    regional = V1Client(emulator, "europe-west4")
    regional.ok("POST", "/jobs", gcloud_body(name))
    global_host = V1Client(emulator, None)
    listed = global_host.ok("GET", "/jobs")
    mine = [item for item in listed["items"] if item["metadata"]["name"] == name]
    assert mine[0]["metadata"]["labels"]["cloud.googleapis.com/location"] == "europe-west4"
    assert global_host.ok("GET", f"/jobs/{name}")["metadata"]["uid"] == mine[0]["metadata"]["uid"]
    assert V1Client(emulator).call("GET", f"/jobs/{name}").status_code == 404  # not in us-central1
    orphan = global_host.call("POST", "/jobs", gcloud_body(f"v1-{uuid.uuid4().hex[:8]}"))
    assert orphan.status_code == 400 and "regional" in orphan.json()["error"]["message"]
    regional.ok("DELETE", f"/jobs/{name}")


def raw_request(server: EmulatorProcess, request_line: str) -> str:
    """Send one request head as given; return the status line and body."""
    address = server.rest_endpoint.removeprefix("http://")
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(f"{request_line}\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def test_the_emulator_is_never_an_open_proxy(emulator: EmulatorProcess) -> None:
    address = emulator.rest_endpoint.removeprefix("http://")
    own = raw_request(emulator, f"GET http://us-central1-{address}{V1}/jobs HTTP/1.1")
    assert own.startswith("HTTP/1.1 200"), own[:300]
    for line in (f"GET http://example.com{V1}/jobs HTTP/1.1",
                 f"GET http://us-central1-example.com:{address.rsplit(':', 1)[1]}/ HTTP/1.1",
                 f"GET https://{address}{V1}/jobs HTTP/1.1",
                 "CONNECT example.com:443 HTTP/1.1"):
        answer = raw_request(emulator, line)
        assert answer.startswith("HTTP/1.1 403"), (line, answer[:300])
        assert "not a proxy" in answer
