"""The emulator SIGKILLed while a job runs, then started again on the same data directory: a
re-created gcpjobs client, through the shared watcher, gets each job's final state.

What the emulator does (docs/emulator.md, Persistence and Job faults): every job that had not
ended when it died (RUNNING, and QUEUED or PENDING too) is FAILED at the next start with code
13 and a message saying the emulator restarted; the replicas it left running are killed; ended
jobs are untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gcpjobs.clients.vertex import AsyncVertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.states import JobState
from gcpjobs.watch.shared import default_watcher
from tests.clients.conftest import python_job, target_for, unique_label
from tests.emulator.support import process_gone
from tests.waiting import wait_for, wait_for_async

SLEEPS = "import os, pathlib, time; pathlib.Path('pid').write_text(str(os.getpid())); time.sleep(300)"


async def test_a_sigkilled_emulator_restarted_on_its_data_dir_reports_final_states(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    first = emulator_process_factory(data_dir, queued_seconds=None)  # jobs wait in QUEUED until advanced
    labels = {"case": unique_label()}
    async with AsyncVertexClient(target=target_for(first)) as client:
        done = await client.create(python_job("pass", labels=labels))
        first.advance(done.name)  # QUEUED -> PENDING; pending_seconds 0 runs it at once
        assert (await default_watcher().wait(client, done.name)).status.state is JobState.SUCCEEDED
        running = await client.create(python_job(SLEEPS, labels=labels))
        first.advance(running.name)
        queued = await client.create(python_job("pass", labels=labels))

        async def is_running() -> bool:
            return (await client.get(running.name)).state is JobState.RUNNING

        await wait_for_async(is_running, message="the job to run")
        pid_file = data_dir / "jobs" / running.name.rsplit("/", 1)[-1] / "replicas" / \
            "workerpool0-0" / "pid"
        replica_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(),
                                   message="the replica's pid"))

    first.kill()  # SIGKILL: no chance to record anything
    assert not process_gone(replica_pid)  # a crash leaves the replica behind

    second = emulator_process_factory(data_dir)
    async with AsyncVertexClient(target=target_for(second)) as client:  # re-created
        results = {name: await default_watcher().wait(client, name, timeout=30)
                   for name in (done.name, running.name, queued.name)}
        assert results[done.name].status.state is JobState.SUCCEEDED
        for name in (running.name, queued.name):
            status = results[name].status
            assert status.state is JobState.FAILED, name
            assert status.error is not None and status.error.code == 13
            assert "emulator restarted while this job was running" in status.error.message
        assert process_gone(replica_pid)

        fresh = await client.run(python_job("print('after the crash')", labels=labels))
        assert fresh.status.state is JobState.SUCCEEDED
