"""A job's life through the official clients: success, failure, timeout, cancel, not found."""

from __future__ import annotations

import os
import re
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.support import (
    PARENT,
    State,
    custom_job,
    pool,
    process_gone,
    processes_in,
    read_pids,
    unique,
    wait_until,
)
from tests.waiting import wait_for, wait_for_async

NAME = re.compile(r"^projects/gcpjobs-test/locations/us-central1/customJobs/(\d{18,19})$")


def test_job_runs_to_success_with_times_id_and_labels(job_client: aiplatform_v1.JobServiceClient) -> None:
    labels = {"team": "ml", "run": unique()}
    created = job_client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["sh", "-c", "echo hello"], labels=labels)
    )

    match = NAME.match(created.name)
    assert match, created.name
    assert int(match.group(1)) < 2**63
    assert created.state == State.JOB_STATE_QUEUED
    assert created.create_time is not None and created.update_time is not None
    assert dict(created.labels) == labels

    done = wait_until(job_client, created.name)
    assert done.state == State.JOB_STATE_SUCCEEDED, done.error
    assert done.create_time <= done.start_time <= done.end_time
    assert done.update_time == done.end_time
    assert dict(done.labels) == labels
    assert "error" not in done
    assert "web_access_uris" not in done or not done.web_access_uris


def test_non_zero_exit_fails_the_job_with_the_replica_and_status(
    job_client: aiplatform_v1.JobServiceClient,
) -> None:
    created = job_client.create_custom_job(parent=PARENT, custom_job=custom_job(["sh", "-c", "exit 3"]))

    done = wait_until(job_client, created.name)

    assert done.state == State.JOB_STATE_FAILED
    assert done.error.code == 3
    assert done.error.message == (
        "The replica workerpool0-0 exited with a non-zero status of 3. Termination reason: Error."
    )
    assert done.end_time >= done.start_time


def test_a_replica_killed_by_a_signal_says_which_signal(grpc_job_client: aiplatform_v1.JobServiceClient) -> None:
    created = grpc_job_client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["sh", "-c", "kill -9 $$"])
    )

    done = wait_until(grpc_job_client, created.name)

    assert done.state == State.JOB_STATE_FAILED
    assert "workerpool0-0 was terminated by signal 9 (SIGKILL)" in done.error.message


def test_a_missing_program_fails_the_job_with_a_clear_message(
    grpc_job_client: aiplatform_v1.JobServiceClient,
) -> None:
    created = grpc_job_client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["gcpjobs-no-such-program", "--flag"])
    )

    done = wait_until(grpc_job_client, created.name)

    assert done.state == State.JOB_STATE_FAILED
    assert done.error.code == 3
    assert "'gcpjobs-no-such-program' was not found on this host" in done.error.message


def test_maximum_run_time_is_enforced(grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path) -> None:
    script = 'sleep 300 & echo $! > "$PIDS/child"; wait'
    created = grpc_job_client.create_custom_job(
        parent=PARENT,
        custom_job=custom_job(["sh", "-c", script], env={"PIDS": str(tmp_path)},
                              timeout=timedelta(milliseconds=500)),
    )
    pids = read_pids(tmp_path, ["child"])

    done = wait_until(grpc_job_client, created.name)

    assert done.state == State.JOB_STATE_FAILED
    assert done.error.code == 4
    assert "maximum run time of 0.5s" in done.error.message
    run_seconds = (done.end_time - done.start_time).total_seconds()
    assert 0.5 <= run_seconds < 5, run_seconds
    assert process_gone(pids["child"])


# A replica that starts a child, a grandchild, and a process that leaves its process group.
TREE_SCRIPT = r"""
echo $$ > "$PIDS/root"
sleep 300 & echo $! > "$PIDS/child"
sh -c 'sleep 300 & echo $! > "$PIDS/grandchild"; wait' &
setsid sleep 300 & echo $! > "$PIDS/escaped"
wait
"""


def test_cancel_ends_cancelled_and_kills_the_whole_process_tree(
    job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    created = job_client.create_custom_job(
        parent=PARENT,
        custom_job=custom_job(["sh", "-c", TREE_SCRIPT], env={"PIDS": str(tmp_path)}),
    )
    wait_until(job_client, created.name, {State.JOB_STATE_RUNNING})
    pids = read_pids(tmp_path, ["root", "child", "grandchild", "escaped"])
    assert not any(process_gone(pid) for pid in pids.values())
    # The escaped process really leaves the replica's session (once `setsid` has run: its pid
    # is written before): only the tree walk can find it.
    wait_for(lambda: os.getsid(pids["escaped"]) != os.getsid(pids["root"]), timeout=10,
             message="the escaped process to leave the replica's session")

    assert job_client.cancel_custom_job(name=created.name) is None
    right_after = job_client.get_custom_job(name=created.name)
    assert right_after.state in (State.JOB_STATE_CANCELLING, State.JOB_STATE_CANCELLED)

    done = wait_until(job_client, created.name)
    assert done.state == State.JOB_STATE_CANCELLED
    assert done.error.code == 1
    assert done.error.message == "CANCELED"
    assert done.end_time is not None
    gone = {name: process_gone(pid) for name, pid in pids.items()}
    assert all(gone.values()), gone


def test_cancel_kills_processes_that_ignore_sigterm(
    emulator: EmulatorProcess, grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    previous = emulator.configure()["cancel_grace_seconds"]
    emulator.configure(cancel_grace_seconds=0.3)
    try:
        script = 'trap "" TERM; sleep 300 & echo $! > "$PIDS/child"; wait'
        created = grpc_job_client.create_custom_job(
            parent=PARENT, custom_job=custom_job(["sh", "-c", script], env={"PIDS": str(tmp_path)})
        )
        pids = read_pids(tmp_path, ["child"])
        grpc_job_client.cancel_custom_job(name=created.name)

        done = wait_until(grpc_job_client, created.name)
    finally:
        emulator.configure(cancel_grace_seconds=previous)

    assert done.state == State.JOB_STATE_CANCELLED
    assert process_gone(pids["child"])


def test_cancelling_a_finished_job_is_a_failed_precondition(
    job_client: aiplatform_v1.JobServiceClient,
) -> None:
    created = job_client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    wait_until(job_client, created.name, {State.JOB_STATE_SUCCEEDED})

    # REST clients see 400 (BadRequest); gRPC clients its FailedPrecondition subclass.
    with pytest.raises(exceptions.BadRequest) as caught:
        job_client.cancel_custom_job(name=created.name)

    assert "because it is in terminal state JOB_STATE_SUCCEEDED" in caught.value.message
    if job_client.transport.kind == "grpc":
        assert isinstance(caught.value, exceptions.FailedPrecondition)
    assert job_client.get_custom_job(name=created.name).state == State.JOB_STATE_SUCCEEDED


def test_unknown_job_is_not_found(job_client: aiplatform_v1.JobServiceClient) -> None:
    with pytest.raises(exceptions.NotFound) as caught:
        job_client.get_custom_job(name=f"{PARENT}/customJobs/1234567890123456789")
    assert caught.value.message.endswith("The CustomJob does not exist.")

    with pytest.raises(exceptions.NotFound):
        job_client.cancel_custom_job(name=f"{PARENT}/customJobs/1234567890123456789")


def test_malformed_job_name_is_an_invalid_argument(job_client: aiplatform_v1.JobServiceClient) -> None:
    with pytest.raises(exceptions.BadRequest) as caught:
        job_client.get_custom_job(name=f"{PARENT}/customJobs/not-a-number")
    assert "CustomJob ids are numbers" in caught.value.message


def test_web_access_uris_are_set_when_asked_for(
    grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    created = grpc_job_client.create_custom_job(
        parent=PARENT,
        custom_job=custom_job(["sh", "-c", 'touch "$PIDS/started"; sleep 300'],
                              env={"PIDS": str(tmp_path)}, enable_web_access=True),
    )
    running = wait_until(grpc_job_client, created.name, {State.JOB_STATE_RUNNING})
    try:
        uris = dict(running.web_access_uris)
        assert list(uris) == ["workerpool0-0"]
        with urllib.request.urlopen(uris["workerpool0-0"], timeout=5) as page:
            assert b"workerpool0-0" in page.read()
    finally:
        grpc_job_client.cancel_custom_job(name=created.name)
    assert wait_until(grpc_job_client, created.name).state == State.JOB_STATE_CANCELLED


async def test_async_client_creates_watches_and_cancels(
    async_job_client: aiplatform_v1.JobServiceAsyncClient, tmp_path: Path
) -> None:
    quick = await async_job_client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))

    async def finished() -> aiplatform_v1.CustomJob | None:
        job = await async_job_client.get_custom_job(name=quick.name)
        return job if job.state == State.JOB_STATE_SUCCEEDED else None

    succeeded = await wait_for_async(finished, timeout=20, message="quick job to succeed")
    assert succeeded is not None and succeeded.end_time is not None

    slow = await async_job_client.create_custom_job(
        parent=PARENT,
        custom_job=custom_job(["sh", "-c", 'echo $$ > "$PIDS/root"; exec sleep 300'],
                              env={"PIDS": str(tmp_path)}),
    )
    pid = read_pids(tmp_path, ["root"])["root"]
    await async_job_client.cancel_custom_job(name=slow.name)

    async def cancelled() -> bool:
        job = await async_job_client.get_custom_job(name=slow.name)
        return bool(job.state == State.JOB_STATE_CANCELLED)

    await wait_for_async(cancelled, timeout=20, message="slow job to be cancelled")
    assert wait_for(lambda: process_gone(pid), timeout=5)


def test_a_job_that_finishes_quickly_still_passes_through_running(
    grpc_job_client: aiplatform_v1.JobServiceClient,
) -> None:
    started = time.monotonic()
    created = grpc_job_client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    done = wait_until(grpc_job_client, created.name)
    assert done.state == State.JOB_STATE_SUCCEEDED
    assert done.start_time is not None  # it was RUNNING, however briefly
    assert time.monotonic() - started < 10


def test_a_program_that_cannot_be_executed_fails_the_job_and_leaves_nothing_running(
    emulator: EmulatorProcess, grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    not_a_program = tmp_path / "data.txt"
    not_a_program.write_text("just text\n")
    job = custom_job(["sleep", "300"], extra_pools=[pool([str(not_a_program)])])

    created = grpc_job_client.create_custom_job(parent=PARENT, custom_job=job)
    done = wait_until(grpc_job_client, created.name)

    assert done.state == State.JOB_STATE_FAILED
    assert done.error.code == 3
    assert "The replica workerpool1-0 could not start" in done.error.message
    job_id = created.name.rsplit("/", 1)[-1]
    assert processes_in(emulator.data_dir.resolve() / "jobs" / job_id) == []
