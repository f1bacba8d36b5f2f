"""The `gcpjobs` command against an emulator on a real socket: in this process, and as the
real console script where the process is the point (its exit, Ctrl-C, the emulator's own
commands)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
import yaml
from google.cloud.aiplatform_v1.services.job_service import JobServiceClient

from gcpjobs.emulator.process import EmulatorProcess
from tests.cli.support import (
    GCPJOBS,
    assert_one_line_error,
    clean_env,
    gcpjobs,
    gcpjobs_process,
    job_file,
    python_job,
)
from tests.waiting import wait_for


def test_version(env: dict[str, str]) -> None:
    result = gcpjobs_process("--version", env=env)
    assert result.returncode == 0
    assert result.stdout.startswith("gcpjobs ")


def test_preview_shows_the_request_with_secrets_redacted(tmp_path: Path, env: dict[str, str]) -> None:
    path = python_job(
        tmp_path,
        "pass",
        env={"API_TOKEN": "tok-very-secret-123", "BATCH_SIZE": "64"},
        machine_type="n1-standard-8",
    )
    result = gcpjobs("preview", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "tok-very-secret-123" not in result.stdout + result.stderr
    document = yaml.safe_load(result.stdout)
    custom_job = document["customJob"]
    pool = custom_job["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["machineType"] == "n1-standard-8"
    env_values = {item["name"]: item["value"] for item in pool["containerSpec"]["env"]}
    assert env_values["BATCH_SIZE"] == "64"
    assert env_values["API_TOKEN"] != "tok-very-secret-123"

    as_json = gcpjobs("preview", "--format", "json", str(path), env=env)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["customJob"]["jobSpec"] == custom_job["jobSpec"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["preview", "does-not-exist.yaml"], ["does-not-exist.yaml"]),
        (["preview", "--format", "xml", "JOBFILE"], ["xml", "yaml or json"]),
        (["run", "--transport", "carrier-pigeon", "JOBFILE"], ["carrier-pigeon"]),
        (["list", "--state", "SLEEPING"], ["SLEEPING", "RUNNING"]),
        (["frobnicate"], ["frobnicate"]),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], args: list[str], fragments: list[str]
) -> None:
    path = python_job(tmp_path, "pass")
    result = gcpjobs(*[str(path) if a == "JOBFILE" else a for a in args], env=env)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--queued-seconds", "soon"], "'soon'"),
        (["--grpc-port", "70000"], "65535"),
        (["--cancel-grace-seconds", "-1"], "cancel-grace-seconds"),
    ],
)
def test_bad_emulator_flags_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = gcpjobs_process(
        "emulator", "start", "--data-dir", str(tmp_path), *args, env=clean_env(), timeout=30
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("gcpjobs emulator start: "), result.stderr
    assert fragment in lines[0]


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("kind: vertex\nname: x\n", ["image"]),
        ("kind: vertex\nimage: img\nboot_disk_size_gb: -5\n", ["boot_disk_size_gb"]),
        (
            "kind: vertex\nimage: img\nmachine_type: e2-standard-4\naccelerator_type: NVIDIA_TESLA_T4\n",
            ["accelerator"],
        ),
        ("kind: teleport\nimage: img\n", ["teleport", "vertex"]),
        ("kind: vertex\nimage: [unclosed\n", ["job.yaml"]),
    ],
)
def test_invalid_job_files_are_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], jobs: JobServiceClient, emulator: EmulatorProcess,
    body: str, fragments: list[str]
) -> None:
    creates_before = emulator.stats()["requests"].get("JobService.CreateCustomJob", 0)
    result = gcpjobs("run", str(job_file(tmp_path, body)), env=env)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, *fragments)
    assert emulator.stats()["requests"].get("JobService.CreateCustomJob", 0) == creates_before


def test_debug_shows_the_traceback(tmp_path: Path, env: dict[str, str]) -> None:
    result = gcpjobs("--debug", "run", str(job_file(tmp_path, "kind: vertex\nname: x\n")), env=env)
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_run_succeeds_and_reports_each_state(
    tmp_path: Path, env: dict[str, str], jobs: JobServiceClient
) -> None:
    path = python_job(tmp_path, "print('hello from the job')")
    result = gcpjobs("run", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "SUCCEEDED" in result.stdout
    # One line per state change, in the state machine's order, from the create's QUEUED on;
    # with no delays configured, polling may not see PENDING or RUNNING, never a repeat.
    # A line is `DATE TIME  STATE`, then `(PREVIOUS for 1.2s)` from the second on.
    lines = [line.split() for line in result.stderr.splitlines()
             if re.match(r"^\d{4}-\d\d-\d\d ", line)]
    states = [words[2] for words in lines]
    assert all(words[3] == f"({before}" and words[4] == "for"
               for words, before in zip(lines[1:], states, strict=False)), result.stderr
    machine = ["QUEUED", "PENDING", "RUNNING", "SUCCEEDED"]
    assert states[0] == "QUEUED" and states[-1] == "SUCCEEDED", result.stderr
    assert [s for s in machine if s in states] == states, result.stderr
    name = next(
        word for word in result.stdout.split() if word.startswith("projects/")
    )
    assert jobs.get_custom_job(name=name).state.name == "JOB_STATE_SUCCEEDED"


def test_run_failure_exits_1_with_the_exit_status(tmp_path: Path, env: dict[str, str]) -> None:
    path = python_job(tmp_path, "import sys; sys.exit(3)")
    result = gcpjobs_process("run", str(path), env=env)
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "non-zero status of 3" in result.stdout


def test_detach_then_status_list_and_cancel(
    tmp_path: Path, env: dict[str, str], jobs: JobServiceClient
) -> None:
    path = python_job(tmp_path, "import time; time.sleep(300)", name="detached-sleeper")
    submitted = gcpjobs("run", "--detach", str(path), env=env)
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.strip().splitlines()[-1]
    assert name.startswith("projects/gcpjobs-local/locations/us-central1/customJobs/")
    job_id = name.rsplit("/", 1)[-1]
    wait_for(lambda: jobs.get_custom_job(name=name).state.name == "JOB_STATE_RUNNING", timeout=30)

    shown = gcpjobs("status", job_id, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "RUNNING"

    listed = gcpjobs("list", "--state", "running", env=env)
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout

    cancelled = gcpjobs("cancel", name, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "CANCELLED" in cancelled.stdout
    assert jobs.get_custom_job(name=name).state.name == "JOB_STATE_CANCELLED"


def test_status_of_an_unknown_job_is_one_line(env: dict[str, str]) -> None:
    result = gcpjobs_process("status", "123456789", env=env)
    assert result.returncode == 1
    assert_one_line_error(result, "NOT_FOUND")


def _start_following(path: Path, env: dict[str, str], jobs: JobServiceClient) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [GCPJOBS, "run", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    assert process.stderr.readline().startswith("target: emulator at ")  # said before sending
    first = process.stderr.readline()
    assert first.startswith("created projects/"), first
    name = first.split()[1]
    # The CLI reports its first state once it is following (and handling Ctrl-C) ...
    stderr = process.stderr
    wait_for(lambda: "QUEUED" in stderr.readline(), timeout=30, message="the first state line")
    # ... and the job's replica must be running for Ctrl-C to have something to stop.
    wait_for(lambda: jobs.get_custom_job(name=name).state.name == "JOB_STATE_RUNNING", timeout=30)
    return process, name


def test_ctrl_c_cancels_the_job_and_its_processes(
    tmp_path: Path, env: dict[str, str], jobs: JobServiceClient
) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    process, name = _start_following(python_job(tmp_path, code), env, jobs)
    wait_for(pid_file.exists, timeout=30)
    child_pid = int(pid_file.read_text())

    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr  # interrupted (issue 12, finding 6: it was 1)
    assert "CANCELLED" in stdout
    assert jobs.get_custom_job(name=name).state.name == "JOB_STATE_CANCELLED"
    wait_for(lambda: not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE, timeout=30)


def test_second_ctrl_c_leaves_the_job_running_and_says_so(
    tmp_path: Path, env: dict[str, str], jobs: JobServiceClient
) -> None:
    process, name = _start_following(python_job(tmp_path, "import time; time.sleep(300)"), env, jobs)
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    wait_for(lambda: "press Ctrl-C again" in process.stderr.readline(), timeout=10)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "left running" in stderr
    assert jobs.get_custom_job(name=name).state.name == "JOB_STATE_RUNNING"
    jobs.cancel_custom_job(name=name)


def test_emulator_commands_and_embedded_default(tmp_path: Path) -> None:
    """With no project configured, `gcpjobs run` starts the embedded emulator in the background."""
    env = clean_env(GCPJOBS_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path / "home"))
    try:
        result = gcpjobs_process("run", str(python_job(tmp_path, "print('embedded')")), env=env,
                                 timeout=120)
        assert result.returncode == 0, result.stderr
        assert "SUCCEEDED" in result.stdout

        status = gcpjobs_process("emulator", "status", env=env)
        assert status.returncode == 0, status.stderr
        assert "grpc=" in status.stdout + status.stderr
    finally:
        stopped = gcpjobs_process("emulator", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    after = gcpjobs_process("emulator", "status", env=env)
    assert after.returncode != 0
