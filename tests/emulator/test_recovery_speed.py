"""A restart after a crash with hundreds of unfinished jobs is ready within the embedded mode's
wait (issue 11, finding 7): 300 running jobs took 36.6 s to recover, past that 30 s wait, because
stopping what each job left behind read the whole process table (twice) and waited on its own.
How long it takes now is for benchmarks/emulator_load.py (`restart`) to measure, not a test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport

from gcpjobs.clients.embedded import START_TIMEOUT_SECONDS
from gcpjobs.emulator.config import EmulatorConfig
from gcpjobs.emulator.control import start_detached, stop_detached
from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.support import PARENT, State, custom_job, processes_in
from tests.waiting import wait_for

UNFINISHED = 300


def test_a_restart_with_300_running_jobs_is_ready_within_the_embedded_wait_all_failed_and_stopped(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = emulator_process_factory(data_dir)
    client = grpc_client(first)
    names = [client.create_custom_job(parent=PARENT, custom_job=custom_job(["sleep", "300"])).name
             for _ in range(UNFINISHED)]
    wait_for(lambda: len(processes_in(data_dir)) >= UNFINISHED, timeout=120,
             message=lambda: f"{UNFINISHED} replicas running; {len(processes_in(data_dir))} are")
    client.transport.close()

    first.kill()  # SIGKILL: every job is left unfinished, every replica running

    # Started as the embedded mode starts one when a client finds none running: the same call
    # and wait, in the background, so the wait's own rules (not a number here) decide.
    second = start_detached(EmulatorConfig(grpc_port=0, rest_port=0, data_dir=data_dir),
                            timeout=START_TIMEOUT_SECONDS)
    try:
        assert not processes_in(data_dir), "replicas outlived the recovery"
        client = aiplatform_v1.JobServiceClient(
            transport=JobServiceGrpcTransport(channel=grpc.insecure_channel(second.grpc_address)))
        jobs = {job.name: job for job in client.list_custom_jobs(parent=PARENT)}
        assert set(jobs) == set(names)
        assert {job.state for job in jobs.values()} == {State.JOB_STATE_FAILED}
        assert all(job.error.message.startswith("The gcpjobs emulator restarted while this job")
                   for job in jobs.values())
        client.transport.close()
    finally:
        stop_detached(data_dir)
