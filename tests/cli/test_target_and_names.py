"""Issue 12, findings 2, 4 and 7: the CLI says where it sends, can be forced onto the emulator,
finds jobs by the name the user gave them, lists them whole, and cancels both kinds alike.

Commands run in this process (tests/cli/inprocess.py), the GCP target one as a real `gcpjobs`
process; "a configured gcloud project" is a throwaway CLOUDSDK_CONFIG written by the real
gcloud CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.cli.support import assert_one_line_error, clean_env, gcpjobs, gcpjobs_process, python_job

PROJECT = "real-project-never-used"


def gcloud_configured(tmp_path: Path) -> dict[str, str]:
    """An environment whose gcloud configuration holds a project and an account (and no
    emulator variable), with its own data dir and home."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("the Google Cloud CLI is not installed")
    env = clean_env(CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), HOME=str(tmp_path / "home"),
                    GCPJOBS_DATA_DIR=str(tmp_path / "data"),
                    # Should anything reach for GCE credentials, fail at once, locally.
                    GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")
    (tmp_path / "home").mkdir()
    for key, value in (("core/project", PROJECT), ("core/account", "me@example.com")):
        subprocess.run([gcloud, "config", "set", key, value], env=env, check=True,
                       capture_output=True, timeout=120)
    return env


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------------------ finding 2


def test_emulator_flag_and_variable_win_over_a_configured_gcloud_project(tmp_path: Path) -> None:
    env = gcloud_configured(tmp_path)
    job = python_job(tmp_path, "print('local')")
    try:
        forced = gcpjobs("run", "--emulator", str(job), env=env, timeout=120)
        assert forced.returncode == 0, forced.stderr
        first = forced.stderr.splitlines()[0]
        assert first.startswith("target: emulator at 127.0.0.1:"), forced.stderr
        assert PROJECT not in forced.stderr + forced.stdout

        by_variable = gcpjobs("run", "--detach", str(job), env={**env, "GCPJOBS_TARGET": "emulator"})
        assert by_variable.returncode == 0, by_variable.stderr
        assert by_variable.stderr.startswith("target: emulator at "), by_variable.stderr
        assert by_variable.stdout.startswith("projects/gcpjobs-local/")
    finally:
        gcpjobs("emulator", "stop", env=env)


def test_without_the_flag_it_says_it_would_go_to_gcp_before_sending(tmp_path: Path) -> None:
    env = gcloud_configured(tmp_path)
    result = gcpjobs_process("run", "--detach", str(python_job(tmp_path, "pass")), env=env,
                             timeout=120)
    # No credentials here: it fails, but only after saying where it was going.
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (f"target: Vertex AI, project {PROJECT}, region us-central1, as "
                        "Application Default Credentials (gcloud account me@example.com)")
    assert lines[1].startswith("error: no Google Cloud credentials found")
    assert not (tmp_path / "data" / "emulator").exists()  # no emulator was started either


def test_preview_shows_the_project_it_would_really_use(tmp_path: Path) -> None:
    env = gcloud_configured(tmp_path)
    job = str(python_job(tmp_path, "pass"))
    configured = gcpjobs("preview", job, env=env)
    assert configured.returncode == 0, configured.stderr
    assert f"parent: projects/{PROJECT}/locations/us-central1" in configured.stdout
    assert "<project>" not in configured.stdout
    forced = gcpjobs("preview", "--emulator", job, env=env)
    assert "parent: projects/gcpjobs-local/locations/us-central1" in forced.stdout
    cloud_run = gcpjobs("preview", str(python_job(tmp_path, "pass", kind="cloud-run")), env=env)
    assert f"parent: projects/{PROJECT}/locations/us-central1" in cloud_run.stdout


def test_a_bad_gcpjobs_target_is_one_line(tmp_path: Path) -> None:
    env = clean_env(GCPJOBS_TARGET="local", GCPJOBS_DATA_DIR=str(tmp_path / "data"))
    result = gcpjobs("status", "123", env=env)
    assert result.returncode == 1
    assert_one_line_error(result, "GCPJOBS_TARGET='local'", "emulator or gcp")


def test_gcpjobs_target_gcp_without_a_project_is_one_line(tmp_path: Path) -> None:
    env = clean_env(GCPJOBS_TARGET="gcp", CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
                    HOME=str(tmp_path), GCPJOBS_DATA_DIR=str(tmp_path / "data"))
    result = gcpjobs("list", env=env)
    assert result.returncode == 1
    assert_one_line_error(result, "GCPJOBS_TARGET=gcp", "no Google Cloud project")
    assert not (tmp_path / "data" / "emulator").exists()


def test_every_command_says_where_it_goes_on_stderr(tmp_path: Path, env: dict[str, str],
                                                    emulator: EmulatorProcess) -> None:
    done = gcpjobs("run", "--detach", str(python_job(tmp_path, "pass")), env=env)
    name = done.stdout.strip()
    expected = f"target: emulator at {emulator.grpc_address} "
    for args in (["status", "--json", name], ["list", "--json"], ["logs", name],
                 ["cancel", "--no-wait", name], ["attach", "--no-wait"]):
        result = gcpjobs(*args, env=env)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr.startswith(expected), (args, result.stderr)
        if "--json" in args:
            json.loads(result.stdout)  # stdout stays clean


def test_make_demo_forces_the_emulator() -> None:
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "gcpjobs run --emulator" in demo


# ------------------------------------------------------------------------------ finding 4


def _run(tmp_path: Path, env: dict[str, str], name: str, code: str = "print('mine')",
         **fields: object) -> str:
    job = python_job(tmp_path, code, name=name, **fields)
    result = gcpjobs("run", "--detach" if "sleep" in code else "--", str(job), env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] if "sleep" in code else ""


def test_status_and_logs_take_the_name_the_user_gave(tmp_path: Path, env: dict[str, str]) -> None:
    name = unique("logreg-demo")
    _run(tmp_path, env, name, "print('trained')")
    status = gcpjobs("status", "--json", name, env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["displayName"].startswith(f"{name}-")
    logs = gcpjobs("logs", name, env=env)
    assert logs.returncode == 0, logs.stderr
    assert "trained" in logs.stdout
    # A prefix of the name is not the name.
    assert gcpjobs("status", name[:-2], env=env).returncode == 1


def test_a_name_several_jobs_answer_to_lists_them(tmp_path: Path, env: dict[str, str]) -> None:
    name = unique("twice")
    _run(tmp_path, env, name)
    _run(tmp_path, env, name)
    result = gcpjobs("status", name, env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()[1:]  # after the target line
    assert lines[0] == f"error: 2 jobs are named {name!r}; give one of these ids:"
    assert len(lines) == 3 and all("vertex  SUCCEEDED  created " in line for line in lines[1:])
    ids = [line.split()[0] for line in lines[1:]]
    assert gcpjobs("status", ids[0], env=env).returncode == 0


def test_cancel_takes_the_name_the_user_gave(tmp_path: Path, env: dict[str, str]) -> None:
    name = unique("sleeper")
    _run(tmp_path, env, name, "import time; time.sleep(300)")
    result = gcpjobs("cancel", name, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "CANCELLED" in result.stdout


def test_status_of_a_kept_cloud_run_job_by_its_name(tmp_path: Path, env: dict[str, str]) -> None:
    name = unique("kept")
    for _ in range(2):
        _run(tmp_path, env, name, kind="cloud-run", keep_job=True)
    result = gcpjobs("status", "--json", name, env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert f"/jobs/{name}/executions/{name}-" in shown["name"]
    listed = json.loads(gcpjobs("list", "--json", "--kind", "cloud-run", env=env).stdout)
    newest = next(item for item in listed if f"/jobs/{name}/" in item["name"])
    assert shown["name"] == newest["name"]  # the newest of its executions


def test_list_piped_shows_whole_names_one_line_a_job(tmp_path: Path, env: dict[str, str]) -> None:
    name = unique("a-display-name-long-enough-to-be-cut-at-eighty-columns-by-a-table")
    _run(tmp_path, env, name)
    result = gcpjobs("list", "--kind", "vertex", env={**env, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "KIND", "DISPLAY", "NAME", "STATE", "CREATED", "RAN"]
    row = next(line for line in lines if name in line)
    assert row.split()[1:4] == ["vertex", row.split()[2], "SUCCEEDED"]
    assert row.split()[2].startswith(f"{name}-")
    assert all(len(line.split()) in (6, 7) for line in lines[1:])  # nothing wrapped
    as_json = json.loads(gcpjobs("list", "--json", env=env).stdout)
    assert any(item["displayName"].startswith(f"{name}-") for item in as_json)


# ------------------------------------------------------------------------------ finding 7


@pytest.mark.parametrize("kind", ["vertex", "cloud-run"])
def test_cancel_of_an_ended_job_says_so_alike_for_both_kinds(
    tmp_path: Path, env: dict[str, str], kind: str
) -> None:
    job = python_job(tmp_path, "pass", kind=kind, **({"keep_job": True} if kind == "cloud-run"
                                                      else {}))
    done = gcpjobs("run", str(job), env=env)
    assert done.returncode == 0, done.stderr
    name = done.stdout.split()[1]
    for _ in range(2):  # the second time it is as ended as the first
        result = gcpjobs("cancel", name, env=env)
        assert result.returncode == 0, result.stderr
        assert f"{name} already ended (SUCCEEDED); nothing to cancel" in result.stderr
        assert "cancel requested" not in result.stderr
