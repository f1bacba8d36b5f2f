"""The emulator's one-of-each helpers: clock, messages, operations, errors, and the wait for
a process tree to be gone (without reaping a replica)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import grpc
import psutil
from google.cloud import run_v2
from google.protobuf import empty_pb2

from gcpjobs.emulator import clock, executor
from gcpjobs.emulator.errors import invalid
from gcpjobs.emulator.messages import copy, pack
from gcpjobs.emulator.operations import new_operation


def test_rfc3339_is_utc_with_microseconds() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    assert clock.rfc3339(moment) == "2026-01-02T03:04:05.000006Z"
    assert clock.rfc3339_now().endswith("Z")
    assert clock.now().tzinfo is timezone.utc


def test_copy_is_deep_and_pack_takes_both_kinds_of_message() -> None:
    job = run_v2.Job(name="projects/p/locations/l/jobs/j", labels={"a": "1"})
    duplicate = copy(job)
    duplicate.labels["a"] = "2"
    assert job.labels["a"] == "1"
    assert pack(job).TypeName() == "google.cloud.run.v2.Job"
    assert pack(empty_pb2.Empty()).TypeName() == "google.protobuf.Empty"


def test_new_operation_is_done_only_with_a_response() -> None:
    pending = new_operation("p", "us-central1", "42", run_v2.Job())
    assert pending.name == "projects/p/locations/us-central1/operations/42"
    assert not pending.done and not pending.HasField("response")
    done = new_operation("p", "us-central1", "43", run_v2.Job(), empty_pb2.Empty())
    assert done.done and done.response.TypeName() == "google.protobuf.Empty"


def test_invalid_is_invalid_argument() -> None:
    error = invalid("no")
    assert (error.code, error.message) == (grpc.StatusCode.INVALID_ARGUMENT, "no")


def test_wait_gone_keeps_the_deadline_and_leaves_the_exit_status_to_subprocess() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        process = psutil.Process(child.pid)
        started = time.monotonic()
        assert executor._wait_gone([process], started + 0.2) == {process}
        assert 0.15 <= time.monotonic() - started < 5
        child.send_signal(signal.SIGTERM)
        # Gone once it is a zombie: the wait does not reap it, so subprocess still can.
        assert executor._wait_gone([process], time.monotonic() + 10) == set()
        assert child.wait(timeout=10) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()
