"""The local run history through the real `gcpjobs` entry point: a run whose resources are
gone (a Cloud Run Job not kept, a Vertex job deleted) is still answered by `status` and
`logs`, which say the answer is local, and `gcpjobs history` lists it."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.api_core import exceptions as core_exceptions
from google.cloud.aiplatform_v1.services.job_service import JobServiceClient

from gcpjobs.emulator.process import EmulatorProcess
from tests.cli.support import clean_env, gcpjobs, gcpjobs_process, python_job

# An environment value that must never reach the history (it keeps a digest of the request).
PLAIN_VALUE = "value-that-stays-out-of-history-7f3a"
HISTORY_NOTE = "from the local run history"


@dataclass(frozen=True)
class FinishedRun:
    name: str  # the full resource name the result printed
    env: dict[str, str]
    data_dir: Path


def _run(tmp_path: Path, emulator: EmulatorProcess, kind: str, line: str) -> FinishedRun:
    data_dir = tmp_path / "gcpjobs-data"
    env = clean_env(GCPJOBS_EMULATOR_HOST=emulator.grpc_address, GCPJOBS_DATA_DIR=str(data_dir))
    path = python_job(tmp_path, f"print({line!r})", kind=kind, name=f"history-{kind}",
                      env={"PLAIN_SETTING": PLAIN_VALUE})
    result = gcpjobs("run", str(path), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    name = next(word for word in result.stdout.split() if word.startswith("projects/"))
    return FinishedRun(name=name, env=env, data_dir=data_dir)


@pytest.fixture(scope="module")
def cloud_run(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess) -> FinishedRun:
    """A Cloud Run run with `keep_job: false` (the default): its Job and execution are
    deleted once it has ended."""
    return _run(tmp_path_factory.mktemp("history-run"), emulator, "cloud-run",
                "line-of-a-deleted-execution")


def _assert_said_local(stderr: str) -> None:
    assert HISTORY_NOTE in stderr and "no longer exists" in stderr, stderr


def test_status_of_a_deleted_cloud_run_execution_comes_from_the_history(
    cloud_run: FinishedRun,
) -> None:
    shown = gcpjobs("status", cloud_run.name, env=cloud_run.env)
    assert shown.returncode == 0, shown.stderr
    assert "SUCCEEDED" in shown.stdout and cloud_run.name in shown.stdout
    _assert_said_local(shown.stderr)
    as_json = gcpjobs("status", cloud_run.name.rsplit("/", 1)[-1], "--json", env=cloud_run.env)
    assert as_json.returncode == 0, as_json.stderr
    _assert_said_local(as_json.stderr)
    document = json.loads(as_json.stdout)
    assert document["name"] == cloud_run.name and document["state"] == "SUCCEEDED"
    assert document["source"] == "local-history"


def test_logs_of_a_deleted_cloud_run_execution_are_read_from_logging(
    cloud_run: FinishedRun,
) -> None:
    # --follow of a run that has ended: its lines, then its own exit code (0: SUCCEEDED).
    followed = gcpjobs("logs", "--follow", cloud_run.name, env=cloud_run.env)
    assert followed.returncode == 0, followed.stderr
    assert "line-of-a-deleted-execution" in followed.stdout
    _assert_said_local(followed.stderr)


def test_history_lists_the_run_with_its_final_state_and_no_values(
    cloud_run: FinishedRun,
) -> None:
    listed = gcpjobs_process("history", "--json", env=cloud_run.env)
    assert listed.returncode == 0, listed.stderr
    newest = json.loads(listed.stdout)[0]
    assert newest["name"] == cloud_run.name and newest["kind"] == "cloud-run"
    assert newest["state"] == "SUCCEEDED" and newest["endTime"] is not None
    assert newest["specDigest"].startswith("sha256:") and newest["submissionId"]
    # Piped, the table keeps every name whole.
    table = gcpjobs_process("history", "--limit", "1", env=cloud_run.env)
    assert table.returncode == 0, table.stderr
    assert cloud_run.name in table.stdout.splitlines()[1]

    directory = cloud_run.data_dir / "history"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert PLAIN_VALUE.encode() not in path.read_bytes(), path


def test_a_deleted_vertex_job_is_answered_from_the_history(
    tmp_path: Path, emulator: EmulatorProcess, jobs: JobServiceClient,
) -> None:
    run = _run(tmp_path, emulator, "vertex", "line-of-a-deleted-vertex-job")
    jobs.delete_custom_job(name=run.name).result(timeout=60)
    with pytest.raises(core_exceptions.NotFound):
        jobs.get_custom_job(name=run.name)
    shown = gcpjobs("status", "history-vertex", env=run.env)  # the name the user gave
    assert shown.returncode == 0, shown.stderr
    assert "SUCCEEDED" in shown.stdout and run.name in shown.stdout
    _assert_said_local(shown.stderr)

    logged = gcpjobs("logs", run.name.rsplit("/", 1)[-1], env=run.env)
    assert logged.returncode == 0, logged.stderr
    assert "line-of-a-deleted-vertex-job" in logged.stdout
    _assert_said_local(logged.stderr)

    listed = json.loads(gcpjobs("history", "--json", env=run.env).stdout)
    assert [(r["name"], r["state"]) for r in listed] == [(run.name, "SUCCEEDED")]


def test_step_result_of_a_deleted_cloud_run_step_comes_from_the_history(
    tmp_path: Path, emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gcpjobs import run_remote
    from gcpjobs.history import RunHistory
    from tests.steps import functions
    from tests.steps.conftest import REPO, point_at

    point_at(monkeypatch, emulator, tmp_path)
    monkeypatch.setenv("GCPJOBS_STEP_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GCPJOBS_DATA_DIR", str(tmp_path / "gcpjobs-data"))
    # keep_job is false: the step's Job and execution are deleted once it has returned.
    assert run_remote(functions.add, 2, 3, settings={"kind": "cloud-run"}) == 5
    (step,) = RunHistory().recent()
    assert step.kind == "cloud-run" and step.state.value == "SUCCEEDED"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    fetched = gcpjobs("step", "result", step.job_id, env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == "5"
    _assert_said_local(fetched.stderr)
