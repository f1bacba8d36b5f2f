"""`gcpjobs attach`: a `gcpjobs run` killed mid-watch, and its job followed again by label.

Each test has a private emulator: attach follows every running gcpjobs job it finds."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.cli.support import GCPJOBS, assert_one_line_error, clean_env, gcpjobs, python_job
from tests.waiting import wait_for


@pytest.fixture()
def private_env(emulator_process_factory: object, tmp_path: Path) -> dict[str, str]:
    server: EmulatorProcess = emulator_process_factory()  # type: ignore[operator]
    return clean_env(GCPJOBS_EMULATOR_HOST=server.grpc_address,
                     GCPJOBS_DATA_DIR=str(tmp_path / "gcpjobs-data"))


@pytest.mark.parametrize("kind", ["vertex", "cloud-run"])
def test_attach_follows_the_job_of_a_killed_run_to_its_end(
        tmp_path: Path, private_env: dict[str, str], kind: str) -> None:
    release = tmp_path / "release"
    code = ("import pathlib, time\n"
            "print('first', flush=True)\n"
            f"while not pathlib.Path({str(release)!r}).exists(): time.sleep(0.05)\n"
            "print('done', flush=True)\n")
    fields = {"keep_job": True} if kind == "cloud-run" else {}
    run = subprocess.Popen([GCPJOBS, "run", str(python_job(tmp_path, code, kind=kind, **fields))],
                           env=private_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)
    assert run.stderr is not None
    assert run.stderr.readline().startswith("target: emulator at ")  # said before sending
    first = run.stderr.readline()  # "created NAME" / "started execution NAME"
    assert first.startswith(("created projects/", "started execution projects/")), first
    name = first.split()[-1]
    # `gcpjobs run` shows the job's first line live and remembers how far it got ...
    cursors = Path(private_env["GCPJOBS_DATA_DIR"]) / "log-cursors"
    wait_for(lambda: "first" in run.stderr.readline(), timeout=60,
             message="the job's first line on gcpjobs run's screen")
    wait_for(lambda: cursors.is_dir() and any(cursors.iterdir()), timeout=10,
             message="the saved log cursor")
    os.killpg(run.pid, signal.SIGKILL)  # ... then dies; the job runs on
    run.wait(timeout=30)

    listed = gcpjobs("attach", "--no-wait", env=private_env)
    assert listed.returncode == 0, listed.stderr
    assert name.rsplit("/", 1)[-1] in listed.stdout

    attach = subprocess.Popen([GCPJOBS, "attach"], env=private_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert attach.stderr is not None
    wait_for(lambda: "attached to 1 job" in attach.stderr.readline(), timeout=60,
             message="gcpjobs attach to find the job")
    release.touch()
    stdout, stderr = attach.communicate(timeout=60)
    assert attach.returncode == 0, stdout + stderr
    assert f"RUNNING -> SUCCEEDED {name}" in stdout
    # The job's log goes on where `gcpjobs run` stopped: the new line once, the old one not
    # again.
    assert sum(line.endswith("  done") for line in stdout.splitlines()) == 1, stdout
    assert not any(line.endswith("  first") for line in stdout.splitlines()), stdout


def test_attach_with_nothing_running_says_so(private_env: dict[str, str]) -> None:
    result = gcpjobs("attach", env=private_env)
    assert result.returncode == 0
    assert "no running jobs submitted by gcpjobs" in result.stderr


def test_attach_with_a_bad_kind_is_one_line(private_env: dict[str, str]) -> None:
    result = gcpjobs("attach", "--kind", "gke", env=private_env)
    assert_one_line_error(result, "gke")
    assert result.returncode == 2
