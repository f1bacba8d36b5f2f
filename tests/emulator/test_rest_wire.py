"""The REST surface as raw HTTP sees it: proto3 JSON in both spellings, Google JSON errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.support import PARENT, unique
from tests.waiting import wait_for


def http(emulator: EmulatorProcess, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(emulator.rest_endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_camel_case_json_with_enum_names_round_trips(emulator: EmulatorProcess) -> None:
    marker = unique()
    body = {
        "displayName": "wire",
        "labels": {"marker": marker},
        "jobSpec": {"workerPoolSpecs": [{
            "replicaCount": "1",
            "machineSpec": {"machineType": "n1-standard-4", "acceleratorType": "ACCELERATOR_TYPE_UNSPECIFIED"},
            "containerSpec": {"imageUri": "img", "command": ["true"]},
        }]},
    }
    status, created = http(emulator, "POST", f"/v1/{PARENT}/customJobs", body)
    assert status == 200, created
    assert created["state"] == "JOB_STATE_QUEUED"  # names unless the client asks for numbers
    assert created["labels"] == {"marker": marker}

    def finished() -> dict[str, Any] | None:
        job = http(emulator, "GET", f"/v1/{created['name']}")[1]
        return job if job["state"] == "JOB_STATE_SUCCEEDED" else None

    done = wait_for(finished, timeout=20)
    assert done is not None
    assert done["startTime"].endswith("Z") and done["endTime"] >= done["startTime"]
    numeric = http(emulator, "GET", f"/v1/{created['name']}?$alt=json;enum-encoding=int")[1]
    assert numeric["state"] == 4

    status, listed = http(emulator, "GET", f"/v1/{PARENT}/customJobs?filter=labels.marker%3D{marker}&pageSize=5")
    assert status == 200 and [job["name"] for job in listed["customJobs"]] == [created["name"]]
    status, cancelled = http(emulator, "POST", f"/v1/{created['name']}:cancel", {})
    assert status == 400 and cancelled["error"]["status"] == "FAILED_PRECONDITION"


def test_snake_case_and_numeric_enums_are_accepted(emulator: EmulatorProcess) -> None:
    l4_number = int(aiplatform_v1.AcceleratorType.NVIDIA_L4)
    body = {
        "display_name": "snake",
        "job_spec": {"worker_pool_specs": [{
            "replica_count": 1,
            "machine_spec": {"machine_type": "g2-standard-4", "accelerator_type": l4_number, "accelerator_count": 1},
            "container_spec": {"image_uri": "img", "command": ["true"]},
        }]},
    }
    status, created = http(emulator, "POST", f"/v1/{PARENT}/customJobs", body)
    assert status == 200, created
    assert created["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["acceleratorType"] == "NVIDIA_L4"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", f"/v1/{PARENT}/customJobs", {"displayName": "x", "colour": "red"}, 400, "INVALID_ARGUMENT"),
        ("POST", f"/v1/{PARENT}/customJobs", b"{not json", 400, "INVALID_ARGUMENT"),
        ("GET", f"/v1/{PARENT}/customJobs?pageSize=-1", None, 400, "INVALID_ARGUMENT"),
        ("GET", f"/v1/{PARENT}/customJobs?colour=red", None, 400, "INVALID_ARGUMENT"),
        ("GET", f"/v1/{PARENT}/customJobs/1234567890123456789", None, 404, "NOT_FOUND"),
        ("GET", "/v1/projects/p/somewhere/else", None, 404, "NOT_FOUND"),
        ("PATCH", f"/v1/{PARENT}/customJobs/1234567890123456789", {}, 501, "UNIMPLEMENTED"),
    ],
)
def test_errors_are_google_json_errors(
    emulator: EmulatorProcess, method: str, path: str, body: Any, status: int, code: str
) -> None:
    got_status, payload = http(emulator, method, path, body)
    assert got_status == status
    assert payload["error"]["code"] == status
    assert payload["error"]["status"] == code
    assert payload["error"]["message"]
