"""A restart after a crash with hundreds of unfinished jobs is ready in seconds (issue 11,
finding 7): 300 running jobs took 36.6 s to recover, past the embedded mode's 30 s wait, because
stopping what each job left behind read the whole process table (twice) and waited on its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.support import PARENT, State, custom_job, processes_in
from tests.waiting import wait_for

UNFINISHED = 300
# Far under the 36 s this took, far over the ~2 s it takes now: a deadline, not a speed test
# (benchmarks/emulator_load.py measures restart-to-ready).
READY_WITHIN = 20.0


def test_a_restart_with_300_running_jobs_is_ready_quickly_with_every_job_failed_and_stopped(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = emulator_factory(data_dir)
    client = grpc_client(first)
    names = [client.create_custom_job(parent=PARENT, custom_job=custom_job(["sleep", "300"])).name
             for _ in range(UNFINISHED)]
    wait_for(lambda: len(processes_in(data_dir)) >= UNFINISHED, timeout=120,
             message=lambda: f"{UNFINISHED} replicas running; {len(processes_in(data_dir))} are")
    client.transport.close()

    first.kill()  # SIGKILL: every job is left unfinished, every replica running

    second = EmulatorProcess(data_dir).start(timeout=READY_WITHIN)
    try:
        assert not processes_in(data_dir), "replicas outlived the recovery"
        client = grpc_client(second)
        jobs = {job.name: job for job in client.list_custom_jobs(parent=PARENT)}
        assert set(jobs) == set(names)
        assert {job.state for job in jobs.values()} == {State.JOB_STATE_FAILED}
        assert all(job.error.message.startswith("The gcpjobs emulator restarted while this job")
                   for job in jobs.values())
        client.transport.close()
    finally:
        second.stop()
