"""Cloud Run v2 REST JSON as clients read it: the fields the real service always writes are
there at their default values too. The keys are the ones prefect-gcp 0.6.22's cloud-run-v2
worker indexes with `response[...]` (prefect_gcp/models/cloud_run_v2.py: JobV2.get,
ExecutionV2.get; workers/cloud_run_v2.py: `submission["metadata"]["name"]`), read from raw
HTTP the way its discovery client gets them."""

from __future__ import annotations

from typing import Any

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import IMAGE, PARENT, job_id
from tests.emulator.test_rest_wire import http
from tests.waiting import wait_for

# JobV2.get and ExecutionV2.get: `response[key]` (a KeyError when missing).
JOB_KEYS = ("name", "uid", "generation", "createTime", "updateTime", "latestCreatedExecution", "etag")
EXECUTION_KEYS = ("name", "uid", "generation", "createTime", "job", "parallelism", "taskCount",
                  "template", "logUri", "etag")


def ok(emulator: EmulatorProcess, method: str, path: str, body: Any = None) -> dict[str, Any]:
    status, document = http(emulator, method, path, body)
    assert status == 200, document
    return document


def test_a_new_job_and_its_execution_have_every_field_prefect_gcp_indexes(
    emulator: EmulatorProcess,
) -> None:
    name = job_id("shape")
    body = {"template": {"taskCount": 2, "template": {  # no parallelism, as prefect-gcp sends it
        "containers": [{"image": IMAGE, "command": ["true"]}], "maxRetries": 0, "timeout": "60s"}}}
    created = ok(emulator, "POST", f"/v2/{PARENT}/jobs?jobId={name}", body)
    job_path = f"/v2/{PARENT}/jobs/{name}"

    never_run = ok(emulator, "GET", job_path)
    for document in (never_run, created["response"]):  # the job, and CreateJob's operation
        assert {key: document[key] for key in ("latestCreatedExecution", "executionCount")} == {
            "latestCreatedExecution": {}, "executionCount": 0}
        assert document["reconciling"] is False and isinstance(document["template"], dict)
    assert all(key in never_run for key in JOB_KEYS)
    listed = ok(emulator, "GET", f"/v2/{PARENT}/jobs?pageSize=100")["jobs"]
    assert next(j for j in listed if j["name"] == never_run["name"])["latestCreatedExecution"] == {}

    submission = ok(emulator, "POST", f"{job_path}:run", {})
    execution_name = submission["metadata"]["name"]
    assert submission["metadata"]["parallelism"] == 0 and submission["metadata"]["runningCount"] == 0
    execution = ok(emulator, "GET", f"/v2/{execution_name}")
    assert all(key in execution for key in EXECUTION_KEYS)
    assert (execution["parallelism"], execution["taskCount"]) == (0, 2)

    def completed() -> dict[str, Any] | None:
        current = ok(emulator, "GET", f"/v2/{execution_name}")
        return current if "completionTime" in current else None

    done = wait_for(completed, timeout=20, message=f"{execution_name} to complete")
    counts = ("runningCount", "succeededCount", "failedCount", "cancelledCount", "retriedCount")
    assert [done[key] for key in counts] == [0, 2, 0, 0, 0]
    assert done["reconciling"] is False
    assert ok(emulator, "GET", job_path)["latestCreatedExecution"]["name"] == execution_name

    tasks = ok(emulator, "GET", f"/v2/{execution_name}/tasks")["tasks"]
    assert [(t["index"], t["retried"], t["maxRetries"], t["reconciling"]) for t in tasks] == [
        (0, 0, 0, False), (1, 0, 0, False)]
    assert ok(emulator, "GET", f"/v2/{tasks[0]['name']}")["index"] == 0
