"""AsyncLogReader and LogWatcher.follow against the session emulator: the official logging
GAPIC client over a real socket, real jobs; every line once, none lost across a reconnect."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcpjobs.clients.logs import AsyncLogReader, LogCursor, log_subject
from gcpjobs.clients.target import EMULATOR_PROJECT, Target
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import GcpJobsError
from gcpjobs.watch.logs import LogWatcher
from tests.conftest import grpc_client
from tests.emulator.support import PYTHON, custom_job

PARENT = f"projects/{EMULATOR_PROJECT}/locations/us-central1"


def target_for(server: EmulatorProcess) -> Target:
    return Target(kind="emulator", project=EMULATOR_PROJECT, grpc_address=server.grpc_address,
                  rest_endpoint=server.rest_endpoint)


def start_job(emulator: EmulatorProcess, code: str) -> str:
    """A Vertex custom job running `code` with this Python; its resource name."""
    jobs = grpc_client(emulator)
    try:
        name: str = jobs.create_custom_job(parent=PARENT, custom_job=custom_job([PYTHON, "-c", code])).name
    finally:
        jobs.transport.close()
    return name


async def test_follow_resumes_exactly_after_a_reconnect(emulator: EmulatorProcess, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = ("import os, sys, time\n"
            "for i in range(200): print('line', i, flush=True)\n"
            "print('oops', file=sys.stderr, flush=True)\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
            "for i in range(200, 400): print('line', i, flush=True)\n"
            "print('end', flush=True)\n")
    name = start_job(emulator, code)
    cursor = LogCursor()
    texts: list[str] = []
    stderr: list[str] = []
    async for line in LogWatcher(interval=0.05).follow(target_for(emulator), name, cursor=cursor):
        if line.source != "workerpool0-0":
            continue
        (stderr if line.stderr else texts).append(line.text)
        if texts and texts[-1] == "line 150":
            break  # a reconnect: the rest comes to a new watcher with the same cursor
    go.touch()
    seen_end = False

    def ended() -> bool:
        return seen_end

    async for line in LogWatcher(interval=0.05).follow(target_for(emulator), name, cursor=cursor,
                                                       until=ended):
        if line.source != "workerpool0-0":
            continue
        (stderr if line.stderr else texts).append(line.text)
        seen_end = seen_end or line.text == "end"
    assert texts == [f"line {i}" for i in range(400)] + ["end"]
    assert stderr == ["oops"]


async def test_entries_since(emulator: EmulatorProcess) -> None:
    name = start_job(emulator, "print('a', flush=True)\nprint('b', flush=True)")
    async with AsyncLogReader(target_for(emulator)) as reader:
        from tests.waiting import wait_for_async

        async def both() -> list[str]:
            lines = [line.text for line in await reader.entries(name) if line.source == "workerpool0-0"]
            return lines if lines[-2:] == ["a", "b"] else []

        await wait_for_async(both, message="both lines")
        lines = [line for line in await reader.entries(name) if line.text in ("a", "b")]
        later = await reader.entries(name, since=lines[1].timestamp)
        assert "a" not in [line.text for line in later] or lines[0].timestamp == lines[1].timestamp
        assert "b" in [line.text for line in later]


def test_log_subjects_of_job_names() -> None:
    vertex = log_subject("projects/p/locations/l/customJobs/12")
    assert (vertex.project, vertex.where, vertex.key) == (
        "p", 'resource.type="ml_job" resource.labels.job_id="12"', ("ml_job", "12"))
    run = log_subject("projects/p/locations/l/jobs/j/executions/j-abcde")
    assert run.project == "p" and 'labels."run.googleapis.com/execution_name"="j-abcde"' in run.where
    assert run.key == ("cloud_run_job", "l", "j", "j-abcde")
    for bad in ("12", "projects/p/locations/l/customJobs", "projects/p/locations/l/jobs/j"):
        with pytest.raises(GcpJobsError, match="not a job's resource name"):
            log_subject(bad)
