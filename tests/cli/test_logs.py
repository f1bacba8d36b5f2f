"""`gcpjobs logs` and the lines `gcpjobs run` streams, as real processes against the emulator,
with real jobs of both kinds: every line once, in order per stream, as it is logged."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.watch.logs import FAILURE_LIMIT
from tests.cli.support import GCPJOBS, assert_one_line_error, gcpjobs, python_job
from tests.waiting import wait_for

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+)  (.*)$")


def parse(output: str) -> list[tuple[str, str]]:
    """(source, text) of each log line in `output`; other lines are left out."""
    return [(m.group(2), m.group(3)) for m in map(LINE.match, output.splitlines()) if m]


def texts(output: str, source: str) -> list[str]:
    return [text for where, text in parse(output)
            if where == source and JOB_TEXT.match(text)]


# What the test jobs print; the emulator's notes (on Cloud Run with the task's labels, as
# Cloud Run's system log has them) are left out.
LIST_LOG_ENTRIES = "LoggingServiceV2.ListLogEntries"
NOTE = "job logs not shown from here on"
JOB_TEXT = re.compile(r"^((out|err)\d? \d+|first|second|early|late|ready|done|warned)$")


def submit(path: Path, env: dict[str, str]) -> str:
    started = gcpjobs("run", "--detach", str(path), env=env)
    assert started.returncode == 0, started.stderr
    assert not parse(started.stdout + started.stderr)  # --detach streams nothing
    name: str = started.stdout.strip().splitlines()[-1]
    return name


CHATTY = (
    "import os, sys\n"
    "task = os.environ.get('CLOUD_RUN_TASK_INDEX', '')\n"
    "for i in range(30):\n"
    "    print(f'out{task} {i}', flush=True)\n"
    "    if i % 10 == 0: print(f'err{task} {i}', file=sys.stderr, flush=True)\n"
)


def test_logs_of_a_vertex_job_each_line_once_in_order(tmp_path: Path, env: dict[str, str]) -> None:
    name = submit(python_job(tmp_path, CHATTY), env)
    followed = gcpjobs("logs", "--follow", name, env=env)
    assert followed.returncode == 0, followed.stderr
    shown = gcpjobs("logs", name.rsplit("/", 1)[-1], env=env)  # by id, once it has ended
    assert shown.returncode == 0, shown.stderr
    for output in (followed.stdout, shown.stdout):
        assert texts(output, "workerpool0-0") == [f"out {i}" for i in range(30)], output
        assert texts(output, "workerpool0-0:stderr") == ["err 0", "err 10", "err 20"], output


def test_logs_of_a_cloud_run_execution_per_task(tmp_path: Path, env: dict[str, str]) -> None:
    path = python_job(tmp_path, CHATTY, kind="cloud-run", task_count=2, parallelism=2,
                      keep_job=True)
    name = submit(path, env)
    followed = gcpjobs("logs", "-f", name.rsplit("/", 1)[-1], "--kind", "cloud-run", env=env)
    assert followed.returncode == 0, followed.stderr
    shown = gcpjobs("logs", name, env=env)
    assert shown.returncode == 0, shown.stderr
    for output in (followed.stdout, shown.stdout):
        for task in ("0", "1"):
            assert texts(output, f"task-{task}") == [f"out{task} {i}" for i in range(30)], output
            assert texts(output, f"task-{task}:stderr") == [f"err{task} {i}" for i in (0, 10, 20)]


def test_since_leaves_out_earlier_lines(tmp_path: Path, env: dict[str, str]) -> None:
    go = tmp_path / "go"
    code = ("import os, time\nprint('early', flush=True)\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\nprint('late', flush=True)\n")
    name = submit(python_job(tmp_path, code), env)
    wait_for(lambda: "early" in gcpjobs("logs", name, env=env).stdout, timeout=30,
             message="the early line")
    boundary = datetime.now(timezone.utc)
    go.touch()
    assert gcpjobs("logs", "--follow", name, env=env).returncode == 0
    later = gcpjobs("logs", name, "--since", boundary.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), env=env)
    assert later.returncode == 0, later.stderr
    assert texts(later.stdout, "workerpool0-0") == ["late"], later.stdout
    recent = gcpjobs("logs", name, "--since", "1h", env=env)
    assert texts(recent.stdout, "workerpool0-0") == ["early", "late"], recent.stdout


@pytest.mark.parametrize(("kind", "status", "code"), [("vertex", 3, 1), ("cloud-run", 0, 0)])
def test_follow_prints_lines_as_they_come_and_exits_with_the_job(
    tmp_path: Path, env: dict[str, str], kind: str, status: int, code: int
) -> None:
    go = tmp_path / "go"
    job = ("import os, sys, time\nprint('first', flush=True)\n"
           f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
           f"print('second', flush=True)\nsys.exit({status})\n")
    fields = {"keep_job": True, "max_retries": 0} if kind == "cloud-run" else {}
    name = submit(python_job(tmp_path, job, kind=kind, **fields), env)
    process = subprocess.Popen([GCPJOBS, "logs", "--follow", name], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        stdout = process.stdout
        first = wait_for(lambda: (lambda line: line if "first" in line else "")(stdout.readline()),
                         timeout=30, message="the first line")
        assert process.poll() is None  # still following a job that is waiting
        go.touch()
        rest, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    source = "workerpool0-0" if kind == "vertex" else "task-0"
    assert texts(first + rest, source) == ["first", "second"], first + rest


def run_until_shown(
    tmp_path: Path, env: dict[str, str], before: str, after: str, shown: str
) -> tuple[int, str, str]:
    """`gcpjobs run` a job that runs `before`, waits until `run`'s stderr has a line holding
    `shown`, then runs `after`; the run's exit code, stdout and stderr."""
    go = tmp_path / "go"
    code = (f"import os, sys, time\n{before}"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n{after}")
    process = subprocess.Popen([GCPJOBS, "run", str(python_job(tmp_path, code))], env=env,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[str] = []
    try:
        assert process.stderr is not None
        stream = process.stderr

        def appeared() -> bool:
            seen.append(stream.readline())
            return shown in seen[-1]

        wait_for(appeared, timeout=60, message=f"{shown!r} on `gcpjobs run`'s stderr")
        assert process.poll() is None  # still following the job, which waits for `go`
        go.touch()
        stdout, rest = process.communicate(timeout=60)
    finally:
        go.touch()
        if process.poll() is None:
            process.kill()
    return process.returncode, stdout, "".join(seen) + rest


def test_run_streams_the_jobs_lines_live(tmp_path: Path, env: dict[str, str]) -> None:
    # The job waits until `run` has shown its first line.
    code, stdout, stderr = run_until_shown(
        tmp_path, env, "print('ready', flush=True)\n",
        "print('done', flush=True)\nprint('warned', file=sys.stderr, flush=True)\n", "ready")
    assert code == 0, stderr
    assert "SUCCEEDED" in stdout
    assert texts(stderr, "workerpool0-0") == ["ready", "done"], stderr
    assert texts(stderr, "workerpool0-0:stderr") == ["warned"], stderr


def test_run_outlives_a_logging_outage_with_one_note(
    tmp_path: Path, env: dict[str, str], emulator: EmulatorProcess
) -> None:
    """Logging down for the whole run: the log watcher gives up after its transient failures
    in a row, `gcpjobs run` says so once and goes on to the job's result."""
    emulator.set_fault_rates(LIST_LOG_ENTRIES, {"unavailable": 1.0}, seed=3)
    try:
        code, stdout, stderr = run_until_shown(
            tmp_path, env, "print('ready', flush=True)\n", "", NOTE)
    finally:
        emulator.set_fault_rates(LIST_LOG_ENTRIES, {})
    assert code == 0, stderr
    assert "SUCCEEDED" in stdout
    assert stderr.count(NOTE) == 1, stderr
    assert "unavailable" in stderr.lower(), stderr
    assert "Traceback" not in stderr
    assert not texts(stderr, "workerpool0-0"), stderr  # no read got through
    injected = emulator.faults()["injected"].get(LIST_LOG_ENTRIES, {})
    assert injected.get("unavailable", 0) >= FAILURE_LIMIT, injected


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["logs", "123", "--since", "10x"], 2, ["--since", "10x"]),
        (["logs", "123", "--since", "yesterday"], 2, ["yesterday"]),
        (["logs", "123", "--since", "2025-13-45T00:00:00Z"], 2, ["RFC 3339"]),
        (["logs", "123", "--kind", "lambda"], 2, ["lambda", "vertex or cloud-run"]),
        (["logs", "--follow"], 2, ["name"]),
        (["logs", "987654321"], 1, ["987654321"]),
        (["logs", "no-such-job-anywhere", "--follow"], 1, ["no-such-job-anywhere"]),
    ],
)
def test_bad_logs_input_is_one_line(
    env: dict[str, str], args: list[str], code: int, fragments: list[str]
) -> None:
    result = gcpjobs(*args, env=env)
    assert result.returncode == code, result.stderr
    assert_one_line_error(result, *fragments)
    assert result.stdout == ""
