"""LogWatcher: the lines of many jobs followed with one Logging query a poll per project,
through the official logging GAPIC client against the emulator, with real jobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gcpjobs.clients.logs import LogReadError
from gcpjobs.clients.target import Target
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import GcpJobsError
from gcpjobs.watch.logs import FAILURE_LIMIT, LogWatcher
from tests.emulator.cloudrun.support import create, job, run_clients
from tests.emulator.support import PYTHON
from tests.logs.test_reader import start_job, target_for
from tests.waiting import wait_for_async

LIST = "LoggingServiceV2.ListLogEntries"


def _script(tag: str, go: Path, lines: int) -> str:
    """Prints `lines` lines, waits for `go`, prints `lines` more and `end`."""
    return ("import os, sys, time\n"
            f"for i in range({lines}): print({tag!r}, i, flush=True)\n"
            f"print({tag!r}, 'to stderr', file=sys.stderr, flush=True)\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
            f"for i in range({lines}, {2 * lines}): print({tag!r}, i, flush=True)\n"
            "print('end', flush=True)\n")


def _cloud_run_execution(server: EmulatorProcess, code: str) -> str:
    clients = run_clients(server, "grpc")
    created = create(clients, job([PYTHON, "-c", code]))
    operation = clients.jobs.run_job(name=created.name)
    name: str = operation.metadata.name
    return name


def _expected(tag: str, lines: int) -> list[str]:
    return [f"{tag} {i}" for i in range(2 * lines)] + ["end"]


async def _collect(watcher: LogWatcher, server: EmulatorProcess, name: str,
                   out: dict[str, list[str]]) -> None:
    texts = out.setdefault(name, [])

    def ended() -> bool:
        return "end" in texts

    async for line in watcher.follow(target_for(server), name, until=ended):
        if line.text == "end" or line.text[:1] in ("v", "r"):  # not the emulator's notes
            texts.append(line.text + (" [stderr]" if line.stderr else ""))


def _calls(server: EmulatorProcess) -> int:
    return int(server.stats()["requests"].get(LIST, 0))


async def _follow_all(watcher: LogWatcher, server: EmulatorProcess, names: list[str], go: Path,
                      out: dict[str, list[str]], lines: int) -> None:
    """Follow every job; let them go on once each has shown its first `lines` lines."""
    tasks = [asyncio.create_task(_collect(watcher, server, name, out)) for name in names]

    async def first_halves() -> bool:
        return all(len(out.get(name, [])) > lines for name in names)  # + the stderr line

    await wait_for_async(first_halves, timeout=30, message="the first half of every job's lines")
    go.touch()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)


async def test_many_jobs_share_one_query_a_poll_and_each_gets_its_own_lines(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    go = tmp_path / "go"
    lines = 20
    vertex = [start_job(emulator, _script(f"v{i}", go, lines)) for i in range(8)]
    run = [_cloud_run_execution(emulator, _script(f"r{i}", go, lines)) for i in range(4)]
    names = vertex + run
    tags = {name: (f"v{i}" if name in vertex else f"r{i - len(vertex)}") for i, name in enumerate(names)}
    out: dict[str, list[str]] = {}
    interval = 0.2
    watcher = LogWatcher(interval=interval)
    before = _calls(emulator)
    started = time.monotonic()
    await _follow_all(watcher, emulator, names, go, out, lines)
    elapsed = time.monotonic() - started
    calls = _calls(emulator) - before

    for name in names:
        tag = tags[name]
        texts = out[name]
        assert [t for t in texts if not t.endswith("[stderr]")] == _expected(tag, lines), name
        assert [t for t in texts if t.endswith("[stderr]")] == [f"{tag} to stderr [stderr]"], name
    # One query a cycle for the jobs of each project (the test's Cloud Run jobs are in
    # another project than its Vertex jobs), every query one page; a cycle takes at least
    # `interval`. Following each job with its own query would have taken 12 a cycle.
    projects = len({name.split("/")[1] for name in names})
    assert projects == 2
    assert calls <= projects * (elapsed / interval + 1), (calls, elapsed)
    assert not watcher._projects  # the poller left with its last follower


async def test_queries_split_where_the_filter_would_be_too_long(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    go = tmp_path / "go"
    lines = 5
    names = [start_job(emulator, _script(f"v{i}", go, lines)) for i in range(6)]
    out: dict[str, list[str]] = {}
    # Room for two jobs' clauses a query (each is about 110 characters with its timestamp).
    watcher = LogWatcher(interval=0.2, filter_limit=260)
    await _follow_all(watcher, emulator, names, go, out, lines)
    for i, name in enumerate(names):
        assert [t for t in out[name] if not t.endswith("[stderr]")] == _expected(f"v{i}", lines)


async def test_two_follows_of_one_job_each_get_every_line(emulator: EmulatorProcess,
                                                          tmp_path: Path) -> None:
    go = tmp_path / "go"
    name = start_job(emulator, _script("v0", go, 3))
    first: dict[str, list[str]] = {}
    second: dict[str, list[str]] = {}
    watcher = LogWatcher(interval=0.1)
    tasks = [asyncio.create_task(_collect(watcher, emulator, name, out)) for out in (first, second)]

    async def started() -> bool:
        return len(first.get(name, [])) > 3 and len(second.get(name, [])) > 3

    await wait_for_async(started, timeout=30, message="both follows to see the first lines")
    go.touch()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert first[name] == second[name]
    assert [t for t in first[name] if not t.endswith("[stderr]")] == _expected("v0", 3)
    assert [t for t in first[name] if t.endswith("[stderr]")] == ["v0 to stderr [stderr]"]


async def test_transient_read_failures_lose_no_line_and_end_a_follow_only_when_they_persist(
        emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path) -> None:
    server = emulator_factory()
    go = tmp_path / "go"
    lines = 30
    names = [start_job(server, _script(f"v{i}", go, lines)) for i in range(3)]
    # A third of the reads fail (UNAVAILABLE, INTERNAL ...): they are tried again next cycle
    # with the cursors as they were, so no line is skipped or shown twice.
    server.set_fault_rates(LIST, {"unavailable": 0.15, "internal": 0.15}, seed=7)
    out: dict[str, list[str]] = {}
    await _follow_all(LogWatcher(interval=0.05), server, names, go, out, lines)
    injected = server.faults()["injected"].get(LIST, {})
    assert sum(injected.values()) > 0
    for i, name in enumerate(names):
        assert [t for t in out[name] if not t.endswith("[stderr]")] == _expected(f"v{i}", lines)

    # Every read failing: the follow ends with the error after FAILURE_LIMIT cycles in a row.
    server.set_fault_rates(LIST, {"unavailable": 1.0}, seed=7)
    before = _calls(server)
    with pytest.raises(LogReadError, match="cannot read the logs") as raised:
        async for _ in LogWatcher(interval=0.05).follow(target_for(server), names[0]):
            pass
    assert raised.value.transient
    assert _calls(server) - before == FAILURE_LIMIT


async def test_a_target_without_credentials_ends_the_follow_with_that_error(
        tmp_path: Path) -> None:
    target = Target(kind="gcp", project="p", credentials_file=str(tmp_path / "missing.json"))
    follow = LogWatcher().follow(target, "projects/p/locations/us-central1/customJobs/1")
    with pytest.raises(GcpJobsError):
        await asyncio.wait_for(anext(follow), 30)


def test_a_bad_interval_is_refused() -> None:
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="interval > 0"):
            LogWatcher(interval=bad)
