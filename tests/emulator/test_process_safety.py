"""What the emulator's job processes can leave behind and what they start with (issue 11):

* finding 6: after a SIGKILL of the emulator during creates, 3 of 144 Vertex replicas and 3 of
  122 Cloud Run tasks outlived the restart, because their pid was not written down yet; the
  next start found leftovers only through those records;
* finding 9: every job process inherited the emulator's whole environment (the user's shell,
  tokens included), and the data dir's records were readable by other local users.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from gcpjobs.emulator.executor import INSTANCE_ENV, instance_marker
from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.cloudrun.support import RunClients, create, job, run_clients
from tests.emulator.logging.support import grpc_logging, list_texts
from tests.emulator.support import (
    PARENT,
    PROJECT,
    PYTHON,
    State,
    custom_job,
    process_gone,
    processes_in,
    wait_until,
)
from tests.waiting import wait_for

# ------------------------------------------------------------------------ crash leftovers

# A replica that sleeps, and leaves a grandchild in a session of its own whose parent has
# exited: neither the replica's process group nor its descendants lead to it. The grandchild
# writes its pid to a file named after the replica's pid (whole, by a rename).
LEFTOVER = """
import os, time
from pathlib import Path
reports = Path(os.environ["REPORTS"])
replica = os.getpid()
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        report = reports / f".{replica}"
        report.write_text(str(os.getpid()))
        report.rename(reports / str(replica))
        time.sleep(300)
    os._exit(0)
os.waitpid(middle, 0)
time.sleep(300)
"""
TASKS = 3  # of each Cloud Run execution, all running at once


def _reported(reports: Path) -> dict[int, int]:
    """Replica pid → its grandchild's pid, for each replica whose grandchild has started."""
    return {int(path.name): int(path.read_text()) for path in reports.iterdir()
            if not path.name.startswith(".")}


@pytest.fixture()
def reports(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """`reports(name)`: a new folder for leftover jobs to report their pids in. What they
    reported and still runs is SIGKILLed at the end, so a failing test leaves no sleeper."""
    folders: list[Path] = []

    def make(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        folders.append(folder)
        return folder

    yield make
    for folder in folders:
        for pids in _reported(folder).items():
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    process = psutil.Process(pid)
                    if process.environ().get("REPORTS") == str(folder):  # not a reused pid
                        process.kill()


def _carrying(marker: str) -> set[int]:
    """Live processes whose environment (as they were started) has the emulator's marker."""
    found: set[int] = set()
    for process in psutil.process_iter():
        try:
            if (process.environ().get(INSTANCE_ENV) == marker
                    and process.status() != psutil.STATUS_ZOMBIE):
                found.add(process.pid)
        except psutil.Error:
            continue
    return found


def _settled_leftovers(data_dir: Path, reports: Path, at_least: int) -> set[int]:
    """The pids of the data dir's job processes, once every one running there has reported
    (a replica whose emulator was killed while starting it is still starting)."""

    def settled() -> set[int] | None:
        reported = _reported(reports)
        known = set(reported) | set(reported.values())
        running = {process.pid for process in processes_in(data_dir)}
        return known if len(reported) >= at_least and running <= known else None

    found = wait_for(settled, timeout=60, message=lambda: (
        f"the job processes to report; {len(_reported(reports))} have, "
        f"{len(processes_in(data_dir))} run in {data_dir}"))
    assert found is not None
    return found


def _recorded(data_dir: Path) -> set[int]:
    """The pids the emulator wrote down for its unfinished jobs (executor.record_pids)."""
    return {int(record["pid"]) for path in data_dir.rglob("replicas.json")
            for record in json.loads(path.read_text())}


def _assert_all_stopped(data_dir: Path, pids: set[int], marker: str) -> None:
    def left() -> list[str]:
        return [f"pid {pid}" for pid in sorted(pids) if not process_gone(pid)] + [
            f"pid {p.pid} in the data dir" for p in processes_in(data_dir)] + [
            f"pid {pid} with the marker" for pid in sorted(_carrying(marker))]

    wait_for(lambda: not left(), timeout=15,
             message=lambda: f"the leftovers to be stopped; still running: {left()}")


def _leftover_job(reports: Path) -> aiplatform_v1.CustomJob:
    return custom_job([PYTHON, "-c", LEFTOVER], env={"REPORTS": str(reports)})


def _leftover_execution(clients: RunClients, reports: Path) -> str:
    """A Cloud Run job of TASKS leftover tasks (created, not run); its name."""
    spec = job([PYTHON, "-c", LEFTOVER], env={"REPORTS": str(reports)}, task_count=TASKS,
               parallelism=TASKS)
    name: str = create(clients, spec).name
    return name


def test_no_job_process_outlives_a_crash_even_one_whose_pid_was_never_written(
    emulator_process_factory: Callable[..., EmulatorProcess], reports: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    data_dir = (tmp_path / "data").resolve()
    marker = instance_marker(data_dir)
    first = emulator_process_factory(data_dir)

    # 1. SIGKILL while jobs are being created and started. Deleting the pid records makes
    #    "killed before it wrote the pid down" certain for every replica, not a rare race.
    starting = reports("starting")
    clients = run_clients(first, "grpc")
    cloud_run_job = _leftover_execution(clients, starting)

    def create_jobs() -> None:
        jobs = grpc_client(first)
        try:
            for index in range(6):
                jobs.create_custom_job(parent=PARENT, custom_job=_leftover_job(starting),
                                       retry=None, timeout=10)
                if index in (1, 4):
                    clients.jobs.run_job(name=cloud_run_job, retry=None, timeout=10)
        except exceptions.GoogleAPIError:
            pass  # the emulator was killed under it
        finally:
            jobs.transport.close()

    creating = threading.Thread(target=create_jobs, name="create-jobs", daemon=True)
    creating.start()
    wait_for(lambda: _reported(starting), timeout=60, message="a job process to start")
    first.kill()
    creating.join(30)
    clients.close()
    leftovers = _settled_leftovers(data_dir, starting, at_least=1)
    assert not any(process_gone(pid) for pid in leftovers)  # the crash left them running
    recorded = _recorded(data_dir)
    for record in data_dir.rglob("replicas.json"):
        record.unlink()

    second = emulator_process_factory(data_dir)
    _assert_all_stopped(data_dir, leftovers | recorded, marker)

    # 2. SIGKILL once every replica and task runs: their pids are recorded, but the
    #    grandchildren left their replica's group and tree; only the marker finds them.
    running = reports("running")
    jobs = grpc_client(second)
    clients = run_clients(second, "grpc")
    vertex = [jobs.create_custom_job(parent=PARENT, custom_job=_leftover_job(running)).name
              for _ in range(3)]
    clients.jobs.run_job(name=_leftover_execution(clients, running))
    leftovers = _settled_leftovers(data_dir, running, at_least=len(vertex) + TASKS)
    jobs.transport.close()
    clients.close()
    wait_for(lambda: len(_recorded(data_dir)) == len(vertex) + TASKS, timeout=15,
             message="every replica's and task's pid to be recorded")
    second.kill()
    assert _recorded(data_dir) <= leftovers

    third = emulator_process_factory(data_dir)
    _assert_all_stopped(data_dir, leftovers, marker)
    jobs = grpc_client(third)
    assert {jobs.get_custom_job(name=name).state for name in vertex} == {State.JOB_STATE_FAILED}
    jobs.transport.close()


# ---------------------------------------------------------------------------- environment

SHELL_TOKEN = "GCPJOBS_TEST_SHELL_TOKEN"
SHELL_TOKEN_VALUE = "test-only-not-a-credential-7f3a"
OTHER_TOKEN = "GCPJOBS_TEST_OTHER_TOKEN"  # matches no --pass-env pattern of this test
PASS_ENV = "GCPJOBS_TEST_SHELL_*"
# Values shown only for variables that hold no secret; of the rest, names only.
REPORT = f"""
import hashlib, json, os
from pathlib import Path
env = os.environ
shown = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "CLOUD_ML_JOB_ID",
         "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "JOB_SETTING")
Path("made-by-the-job.txt").write_text("the job's own output")
token = env.get({SHELL_TOKEN!r})
print("ENVIRONMENT " + json.dumps({{
    "names": sorted(env),
    "values": {{name: env[name] for name in shown if name in env}},
    "cwd": os.getcwd(),
    "token_sha256": None if token is None else hashlib.sha256(token.encode()).hexdigest(),
}}))
"""
# What JobEnvironment gives every process (docs/emulator.md, Job environment), LC_* aside.
BASE_NAMES = {"PATH", "TMPDIR", "PYTHONUNBUFFERED", "HOME", "USER", "LOGNAME", "LANG",
              "LANGUAGE", "TZ", "GCPJOBS_EMULATOR_HOST", "GCPJOBS_EMULATOR_REST_HOST",
              INSTANCE_ENV}
VERTEX_NAMES = {"CLOUD_ML_JOB_ID", "CLUSTER_SPEC", "TF_CONFIG", "GCPJOBS_EMULATOR_GCS_ROOT",
                "AIP_MODEL_DIR", "AIP_CHECKPOINT_DIR", "AIP_TENSORBOARD_LOG_DIR"}
CLOUD_RUN_NAMES = {"CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX",
                   "CLOUD_RUN_TASK_ATTEMPT", "CLOUD_RUN_TASK_COUNT"}
JOB_ENV = {"JOB_SETTING": "from-the-job"}


def _report(entries: list[Any]) -> dict[str, Any]:
    texts = [entry.text_payload for entry in entries if entry.text_payload.startswith("ENVIRONMENT ")]
    assert len(texts) == 1, f"the job's report in {[e.text_payload[:80] for e in entries]}"
    report: dict[str, Any] = json.loads(texts[0].removeprefix("ENVIRONMENT "))
    return report


def _vertex_report(server: EmulatorProcess) -> tuple[str, dict[str, Any]]:
    """Run the report on Vertex; the job id and what the replica saw."""
    jobs = grpc_client(server)
    created = jobs.create_custom_job(
        parent=PARENT, custom_job=custom_job([PYTHON, "-c", REPORT], env=JOB_ENV))
    finished = wait_until(jobs, created.name, timeout=30)
    jobs.transport.close()
    assert finished.state == State.JOB_STATE_SUCCEEDED, finished.error
    job_id = created.name.rsplit("/", 1)[-1]
    logging = grpc_logging(server)
    entries = list_texts(logging, PROJECT, f'resource.labels.job_id="{job_id}" AND '
                         f'logName="projects/{PROJECT}/logs/workerpool0-0"')
    logging.transport.close()
    return job_id, _report(entries)


def _cloud_run_report(server: EmulatorProcess, secret: str | None = None
                      ) -> tuple[str, dict[str, Any]]:
    """Run the report on Cloud Run (with `secret` as API_KEY); the execution id and what the
    task saw."""
    clients = run_clients(server, "grpc")
    secrets = {"API_KEY": (secret, "latest")} if secret else None
    created = create(clients, job([PYTHON, "-c", REPORT], env=JOB_ENV, secrets=secrets))
    execution = clients.jobs.run_job(name=created.name).result(timeout=30)
    clients.close()
    assert execution.succeeded_count == 1, execution
    execution_id = execution.name.rsplit("/", 1)[-1]
    logging = grpc_logging(server)
    entries = list_texts(logging, PROJECT, 'resource.type="cloud_run_job" AND '
                         f'labels."run.googleapis.com/execution_name"="{execution_id}" AND '
                         f'logName="projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"')
    logging.transport.close()
    return execution_id, _report(entries)


def _assert_small_environment(report: dict[str, Any], service_names: set[str], data_dir: Path,
                              home: Path) -> None:
    names = set(report["names"])
    values = report["values"]
    assert SHELL_TOKEN not in names and report["token_sha256"] is None
    assert OTHER_TOKEN not in names
    unexpected = {name for name in names - BASE_NAMES - service_names - set(JOB_ENV) - {"API_KEY"}
                  if not name.startswith("LC_")}
    assert not unexpected, f"the job got the emulator's {sorted(unexpected)}"
    assert values["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert values["HOME"] == str(home)
    assert {"LANG", "LC_ALL", "LC_CTYPE"} & set(values)
    workdir = Path(report["cwd"])
    assert workdir.is_relative_to(data_dir)
    assert Path(values["TMPDIR"]).is_relative_to(workdir) and Path(values["TMPDIR"]) != workdir
    assert {"GCPJOBS_EMULATOR_HOST", INSTANCE_ENV} <= names
    assert values["JOB_SETTING"] == JOB_ENV["JOB_SETTING"]


def _job_working_directories(data_dir: Path) -> list[Path]:
    return [*data_dir.glob("jobs/*/replicas/*"), *data_dir.glob("executions/*/*/*/tasks/*")]


def _not_private(data_dir: Path) -> Iterator[str]:
    """Every path in the data dir that another local user could read, but for what jobs
    write: the inside of a replica's or task's working directory (the job's files, its TMPDIR)
    and DATA_DIR/gcs (the jobs' outputs, what Vertex's /gcs mount would hold). Jobs run with
    umask 022, as a login shell would; the emulator creates those directories 0700 itself."""
    exempt = {*_job_working_directories(data_dir), data_dir / "gcs"}
    for directory, subdirectories, files in os.walk(data_dir):
        here = Path(directory)
        mode = stat.S_IMODE(here.stat().st_mode)
        if mode != 0o700:
            yield f"{here} is {mode:o}"
        if here in exempt:
            subdirectories[:] = []  # the directory is the emulator's, what is inside the job's
            continue
        for name in files:
            file_mode = stat.S_IMODE((here / name).stat().st_mode)
            if file_mode != 0o600:
                yield f"{here / name} is {file_mode:o}"


def test_jobs_start_from_a_small_environment_and_the_data_dir_is_private(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = (tmp_path / "data").resolve()
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)  # as a user's umask would leave it: the emulator must close it
    home = tmp_path / "home"
    shell = {SHELL_TOKEN: SHELL_TOKEN_VALUE, OTHER_TOKEN: "test-only-other", "HOME": str(home),
             "LANG": "C.UTF-8"}
    first = emulator_process_factory(data_dir, env=shell)
    first.add_secret("api-key", "test-only-secret-value")

    job_id, seen = _vertex_report(first)
    _assert_small_environment(seen, VERTEX_NAMES, data_dir, home)
    assert seen["values"]["CLOUD_ML_JOB_ID"] == job_id
    execution_id, seen = _cloud_run_report(first, secret="api-key")
    _assert_small_environment(seen, CLOUD_RUN_NAMES, data_dir, home)
    assert seen["values"]["CLOUD_RUN_EXECUTION"] == execution_id
    assert seen["values"]["CLOUD_RUN_TASK_INDEX"] == "0"
    assert "API_KEY" in seen["names"]  # the job's own env, from the secret

    # While it runs: its records (SQLite), logs, secrets and admin token are the user's alone.
    assert (data_dir / "admin-token").is_file() and list(data_dir.glob("secrets/api-key/*"))
    assert not list(_not_private(data_dir))
    workdirs = _job_working_directories(data_dir)
    assert len(workdirs) == 2
    for workdir in workdirs:  # jobs do not inherit the emulator's umask 077
        assert stat.S_IMODE((workdir / "made-by-the-job.txt").stat().st_mode) == 0o644
    first.stop()

    passing = emulator_process_factory(data_dir, env=shell, extra_args=["--pass-env", PASS_ENV])
    expected = hashlib.sha256(SHELL_TOKEN_VALUE.encode()).hexdigest()
    for _, seen in (_vertex_report(passing), _cloud_run_report(passing)):
        assert SHELL_TOKEN in seen["names"] and seen["token_sha256"] == expected
        assert OTHER_TOKEN not in seen["names"]
