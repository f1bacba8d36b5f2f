"""The emulator is not reachable from a web page, its admin routes need the token only the user
can read, it writes nothing other local users can read, and it listens beyond loopback only
when told to (issue 11, finding 1; docs/emulator.md, Security model).

A page in the user's browser can send a "simple" request (text/plain, no CORS preflight) to
`http://127.0.0.1:8471`, with its own `Origin`; a page on a domain that resolves to 127.0.0.1
(DNS rebinding) sends its own domain as `Host`. Before these checks both ran commands.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.corpus.support import RawReply, assert_google_error, call
from tests.emulator.support import PARENT, PYTHON, custom_job, unique, wait_until

JOBS = f"/v1/{PARENT}/customJobs"
EVIL = "evil.example"


def job_body(marker: str, touched: Path) -> dict[str, Any]:
    """A CustomJob whose command creates `touched`: if it ran, the file is there."""
    return {
        "displayName": marker,
        "labels": {"marker": marker},
        "jobSpec": {"workerPoolSpecs": [{
            "replicaCount": "1",
            "machineSpec": {"machineType": "n1-standard-4"},
            "containerSpec": {"imageUri": "img", "command": ["touch", str(touched)]},
        }]},
    }


def jobs_marked(emulator: EmulatorProcess, marker: str) -> list[Any]:
    client = grpc_client(emulator)
    try:
        return list(client.list_custom_jobs(request={"parent": PARENT,
                                                     "filter": f"labels.marker={marker}"}))
    finally:
        client.transport.close()


def own_host(emulator: EmulatorProcess) -> str:
    return f"127.0.0.1:{emulator.rest_port}"


@pytest.mark.parametrize(
    ("headers", "http_status", "status"),
    [
        # What a page on evil.example sends when DNS points evil.example at 127.0.0.1.
        (lambda port: {"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}",
                       "Content-Type": "text/plain;charset=UTF-8"}, 403, "PERMISSION_DENIED"),
        # A page on another origin posting straight to 127.0.0.1: its Host is right.
        (lambda port: {"Origin": f"http://{EVIL}", "Content-Type": "text/plain;charset=UTF-8"},
         403, "PERMISSION_DENIED"),
        (lambda port: {"Origin": "null", "Content-Type": "application/json"}, 403,
         "PERMISSION_DENIED"),
        (lambda port: {"Origin": f"http://localhost:{port + 1}"}, 403, "PERMISSION_DENIED"),
        # DNS rebinding with a JSON body (a page that got past CORS somehow).
        (lambda port: {"Host": f"{EVIL}:{port}"}, 403, "PERMISSION_DENIED"),
        (lambda port: {"Host": f"127.0.0.1.{EVIL}:{port}"}, 403, "PERMISSION_DENIED"),
        (lambda port: {"Host": f"us-central1-{EVIL}:{port}"}, 403, "PERMISSION_DENIED"),
        # No Origin (an old browser): the body types a page can send without a preflight.
        (lambda port: {"Content-Type": "text/plain"}, 400, "INVALID_ARGUMENT"),
        (lambda port: {"Content-Type": "application/x-www-form-urlencoded"}, 400,
         "INVALID_ARGUMENT"),
        (lambda port: {"Content-Type": "multipart/form-data; boundary=x"}, 400,
         "INVALID_ARGUMENT"),
    ],
    ids=["rebinding-text-plain", "foreign-origin-text-plain", "origin-null",
         "origin-other-port", "rebinding-json", "rebinding-suffix", "rebinding-regional",
         "text-plain", "form", "multipart"],
)
def test_a_web_page_cannot_create_a_job(
    emulator: EmulatorProcess, tmp_path: Path, headers: Callable[[int], dict[str, str]],
    http_status: int, status: str,
) -> None:
    marker = unique("page")
    touched = tmp_path / "ran"
    reply = call(emulator, "POST", JOBS, job_body(marker, touched), headers=headers(emulator.rest_port))
    message = assert_google_error(reply, http_status, status)
    assert "job" not in reply.json().get("name", "")
    assert len(message) < 400
    time.sleep(1.0)  # a job that had been created would have run by now
    assert not touched.exists()
    assert jobs_marked(emulator, marker) == []


def test_the_same_request_from_a_client_runs(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """The control case: the body above, sent as the official clients send it, runs."""
    marker = unique("client")
    touched = tmp_path / "ran"
    reply = call(emulator, "POST", JOBS, job_body(marker, touched),
                 headers={"User-Agent": "python-requests"})
    assert reply.status == 200, reply.body
    client = grpc_client(emulator)
    try:
        wait_until(client, reply.json()["name"])
    finally:
        client.transport.close()
    assert touched.exists()


def test_a_web_page_cannot_reset_the_emulator(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    server = emulator_factory()
    client = grpc_client(server)
    try:
        kept = client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    finally:
        client.transport.close()
    port = server.rest_port
    attempts = [
        ({"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}",
          "Content-Type": "text/plain;charset=UTF-8"}, 403),
        ({"Origin": f"http://{EVIL}", "Content-Type": "text/plain", **server.admin_headers}, 403),
        ({"Content-Type": "text/plain"}, 401),  # the right Host, no token
        ({"Content-Type": "application/json"}, 401),
    ]
    for headers, http_status in attempts:
        reply = call(server, "POST", "/_emulator/reset", "{}", headers=headers)
        assert_google_error(reply, http_status)
        check = grpc_client(server)
        try:
            assert check.get_custom_job(name=kept.name).name == kept.name  # records survive
        finally:
            check.transport.close()


def test_a_rebound_page_cannot_read_answers(emulator: EmulatorProcess) -> None:
    secret_name = unique("visible-")
    client = grpc_client(emulator)
    try:
        client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"], display_name=secret_name))
    finally:
        client.transport.close()
    for path in (JOBS, "/_emulator/stats", "/v2/projects/p/locations/us-central1/jobs"):
        reply = call(emulator, "GET", path, headers={"Host": f"{EVIL}:{emulator.rest_port}"})
        message = assert_google_error(reply, 403, "PERMISSION_DENIED")
        assert "DNS rebinding" in message
        assert secret_name.encode() not in reply.body
    # The normal read, for contrast, has it.
    assert secret_name.encode() in call(emulator, "GET", JOBS + "?pageSize=1000").body


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}",
     "us-central1-127.0.0.1:{port}", "us-central1-localhost:{port}",
     "europe-west4-localhost:{port}"],
)
def test_loopback_names_and_the_regional_form_are_taken(emulator: EmulatorProcess, host: str) -> None:
    value = host.format(port=emulator.rest_port)
    reply = call(emulator, "GET", JOBS + "?pageSize=1", headers={"Host": value})
    assert reply.status == 200, reply.body
    own_origin = call(emulator, "GET", JOBS + "?pageSize=1",
                      headers={"Origin": f"http://{own_host(emulator)}"})
    assert own_origin.status == 200, own_origin.body


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost:{other}", "127.0.0.2:{port}", "us-central1-:{port}",
     "localhost.:{port}", "0.0.0.0:{port}"],
)
def test_other_hosts_are_refused(emulator: EmulatorProcess, host: str) -> None:
    value = host.format(port=emulator.rest_port, other=emulator.rest_port + 1)
    reply = call(emulator, "GET", JOBS + "?pageSize=1", headers={"Host": value})
    assert_google_error(reply, 403, "PERMISSION_DENIED")


# ---------------------------------------------------------------------------- admin token


def raw_admin(emulator: EmulatorProcess, method: str, path: str, headers: dict[str, str],
              body: Any = None) -> RawReply:
    return call(emulator, method, path, body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-Gcpjobs-Admin-Token": "wrong"},
        {"Authorization": "Bearer {token}x"},
        {"Authorization": "Bearer {short}"},
        {"Cookie": "token={token}"},
    ],
    ids=["none", "wrong", "empty", "basic", "wrong-header", "longer", "prefix", "cookie"],
)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/_emulator/stats", None), ("GET", "/_emulator/config", None),
     ("POST", "/_emulator/config", {"queued_seconds": 0}), ("GET", "/_emulator/faults", None),
     ("DELETE", "/_emulator/faults", None), ("POST", "/_emulator/advance", {"name": "x"}),
     ("GET", "/_emulator/no-such-route", None)],
    ids=["stats", "config", "set-config", "faults", "clear-faults", "advance", "unknown"],
)
def test_admin_routes_need_the_token(
    emulator: EmulatorProcess, headers: dict[str, str], method: str, path: str, body: Any
) -> None:
    token = emulator.admin_token
    assert token
    filled = {name: value.format(token=token, short=token[:-1]) for name, value in headers.items()}
    reply = raw_admin(emulator, method, path, filled, body)
    message = assert_google_error(reply, 401, "UNAUTHENTICATED")
    assert "admin-token" in message
    assert token not in reply.body.decode()
    assert reply.headers.get("www-authenticate", "").startswith("Bearer")


def test_admin_routes_work_with_the_token(emulator: EmulatorProcess) -> None:
    token = emulator.admin_token
    assert token
    for headers in ({"Authorization": f"Bearer {token}"}, {"authorization": f"bearer {token}"},
                    {"X-Gcpjobs-Admin-Token": token}):
        reply = raw_admin(emulator, "GET", "/_emulator/stats", headers)
        assert reply.status == 200, reply.body
        assert "requests" in reply.json()


def test_the_token_file_is_private_and_new_each_start(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "tokens"
    first = emulator_process_factory(data_dir)
    token_file = data_dir / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = first.admin_token
    assert token and len(token) >= 32
    assert token not in "\n".join(first.output)  # never printed or logged
    first.stop()
    assert not token_file.exists()  # gone with the emulator
    second = emulator_process_factory(data_dir)
    assert second.admin_token not in (None, token)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # The old token no longer works.
    reply = raw_admin(second, "GET", "/_emulator/stats", {"Authorization": f"Bearer {token}"})
    assert_google_error(reply, 401, "UNAUTHENTICATED")
    assert second.stats()["requests"] is not None  # gcpjobs' own calls read the new one
    log = (data_dir / "emulator.log")
    assert not log.exists() or second.admin_token not in log.read_text()


def test_web_access_pages_need_no_token_but_the_host_is_checked(emulator: EmulatorProcess) -> None:
    """What job web_access_uris point at: a user opens it in a browser (no token to send). It
    says where a replica runs and nothing else."""
    client = grpc_client(emulator)
    try:
        job = client.create_custom_job(parent=PARENT, custom_job=custom_job(
            [PYTHON, "-c", "import time; time.sleep(30)"], enable_web_access=True))
        running = wait_until(client, job.name, [3])  # JOB_STATE_RUNNING
        uri = running.web_access_uris["workerpool0-0"]
        path = uri.split(str(emulator.rest_port), 1)[1]
        page = call(emulator, "GET", path)
        assert page.status == 200 and b"workerpool0-0" in page.body
        rebound = call(emulator, "GET", path, headers={"Host": f"{EVIL}:{emulator.rest_port}"})
        assert_google_error(rebound, 403, "PERMISSION_DENIED")
        missing = call(emulator, "GET", "/_emulator/web-access/1/workerpool0-0")
        assert_google_error(missing, 404, "NOT_FOUND")
    finally:
        client.cancel_custom_job(name=job.name)
        client.transport.close()


# ---------------------------------------------------------------------------- files


def test_the_data_directory_is_private(emulator_process_factory: Callable[..., EmulatorProcess],
                                       tmp_path: Path) -> None:
    """0700 and 0600 however permissive the user's umask: other local users read nothing
    (records, logs, secrets, the token). What a job writes in its own directory is the job's."""
    data_dir = tmp_path / "private"
    previous = os.umask(0o002)  # a permissive umask in the caller changes nothing
    try:
        server = emulator_process_factory(data_dir)
    finally:
        os.umask(previous)
    client = grpc_client(server)
    try:
        job = client.create_custom_job(parent=PARENT, custom_job=custom_job(
            ["sh", "-c", "echo to-the-log; echo data > output.txt"]))
        wait_until(client, job.name)
    finally:
        client.transport.close()
    server.add_secret("api-key", "s3cret")
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    seen = []
    for root, directories, files in os.walk(data_dir):
        relative = Path(root).relative_to(data_dir)
        # A replica's working directory holds what the job wrote, with the job's own umask.
        if len(relative.parts) >= 4 and relative.parts[0] == "jobs" and relative.parts[2] == "replicas":
            directories[:] = []
            continue
        for name in directories:
            mode = stat.S_IMODE((Path(root) / name).lstat().st_mode)
            assert mode == 0o700, (relative / name, oct(mode))
        for name in files:
            mode = stat.S_IMODE((Path(root) / name).lstat().st_mode)
            assert mode == 0o600, (relative / name, oct(mode))
            seen.append(str(relative / name))
    assert {"admin-token", "emulator.json"} <= set(seen)
    assert any(name.startswith("secrets") for name in seen)
    assert any(name.endswith(".jsonl") for name in seen)  # the job's log


def test_a_detached_emulator_log_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "detached"
    command = [sys.executable, "-m", "gcpjobs.emulator"]
    started = subprocess.run([*command, "start", "--detach", "--grpc-port", "0", "--rest-port", "0",
                              "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        for name in ("emulator.log", "start.lock", "admin-token", "emulator.json"):
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        status = subprocess.run([*command, "status", "--data-dir", str(data_dir)],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr  # found with the token
    finally:
        subprocess.run([*command, "stop", "--data-dir", str(data_dir)], capture_output=True, timeout=60)


# ---------------------------------------------------------------------------- --allow-remote


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_non_loopback_address_needs_allow_remote(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gcpjobs.emulator", "start", "--host", "0.0.0.0",
         "--grpc-port", str(free_port()), "--rest-port", str(free_port()),
         "--data-dir", str(tmp_path / "remote")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--allow-remote" in lines[0] and "0.0.0.0" in lines[0]
    assert not (tmp_path / "remote").exists()  # refused before anything was created


def test_allow_remote_warns_and_checks_hosts(tmp_path: Path) -> None:
    """Bound to 0.0.0.0 (traffic still sent to 127.0.0.1 only): a warning, and Host may be a
    loopback name or this machine's name, never another."""
    server = EmulatorProcess(tmp_path / "remote", host="0.0.0.0", allow_remote=True,
                             grpc_port=free_port(), rest_port=free_port())
    with server.start():
        assert server.host == "127.0.0.1"  # where this test sends its traffic
        warning = [line for line in server.output if "WARNING" in line]
        assert len(warning) == 1 and "can run any command" in warning[0], server.output
        assert call(server, "GET", JOBS + "?pageSize=1").status == 200
        by_name = call(server, "GET", JOBS + "?pageSize=1",
                       headers={"Host": f"{socket.gethostname()}:{server.rest_port}"})
        assert by_name.status == 200, by_name.body
        rebound = call(server, "GET", JOBS, headers={"Host": f"{EVIL}:{server.rest_port}"})
        assert_google_error(rebound, 403, "PERMISSION_DENIED")
        assert "requests" in server.stats()  # the admin token still works


# ---------------------------------------------------------------------------- gcloud


def test_gcloud_passes_the_checks(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """`gcloud ai custom-jobs` (apitools over httplib2) sends Host, no Origin and JSON bodies:
    the checks let it through unchanged."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed")
    env = {**os.environ, "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
           "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CLOUDSDK_AUTH_ACCESS_TOKEN": "emulator",
           "CLOUDSDK_CORE_PROJECT": "gcpjobs-test",
           "CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM": emulator.rest_endpoint + "/"}
    marker = unique("gcloud-")
    created = subprocess.run(
        [gcloud, "ai", "custom-jobs", "create", "--region=us-central1", f"--display-name={marker}",
         "--worker-pool-spec=machine-type=n1-standard-4,replica-count=1,container-image-uri=img",
         "--command=true", "--format=value(name)"],
        env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip().splitlines()[-1]
    described = subprocess.run([gcloud, "ai", "custom-jobs", "describe", name, "--format=json"],
                               env=env, capture_output=True, text=True, timeout=120)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["displayName"] == marker
