"""Pure pieces of the emulator, tested directly."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gcpjobs.emulator.__main__ import _seconds
from gcpjobs.emulator.faults import FaultError, FaultRegistry
from gcpjobs.emulator.stats import job_state_counts
from gcpjobs.emulator.transports.admin import parse_timings
from gcpjobs.emulator.vertex.replicas import local_path_for
from gcpjobs.emulator.vertex.runner import Timings, exit_message


def test_exit_messages_follow_the_real_wording() -> None:
    assert exit_message("workerpool0-0", 2) == (
        "The replica workerpool0-0 exited with a non-zero status of 2. Termination reason: Error."
    )
    assert exit_message("workerpool1-3", -15) == (
        "The replica workerpool1-3 was terminated by signal 15 (SIGTERM). Termination reason: Error."
    )


def test_gcs_uris_map_under_the_data_dir() -> None:
    root = Path("/data")
    assert local_path_for("gs://bucket/a/b/", root) == Path("/data/gcs/bucket/a/b")
    assert local_path_for("gs://bucket", root) == Path("/data/gcs/bucket")
    assert local_path_for("/tmp/out", root) is None


def test_timings_accept_partial_updates_and_hold() -> None:
    current = Timings(queued_seconds=1.0, pending_seconds=2.0, cancel_grace_seconds=5.0)
    assert parse_timings({"queued_seconds": None}, current) == Timings(None, 2.0, 5.0)
    assert parse_timings({"cancel_grace_seconds": 0}, current) == Timings(1.0, 2.0, 0.0)
    for bad in ({"cancel_grace_seconds": None}, {"pending_seconds": "1"}, {"queued_seconds": True},
                {"queued_seconds": float("nan")}, [1]):
        with pytest.raises(ValueError):
            parse_timings(bad, current)


def test_faults_are_consumed_in_the_order_they_were_armed() -> None:
    registry = FaultRegistry()
    registry.arm("JobService.CreateCustomJob", "unavailable")
    registry.arm("JobService.CreateCustomJob", "reply_lost", count=2)
    taken = [registry.take("JobService.CreateCustomJob") for _ in range(4)]
    assert [kind.name if kind else None for kind in taken] == [
        "unavailable", "reply_lost", "reply_lost", None]
    assert registry.take("JobService.GetCustomJob") is None
    with pytest.raises(FaultError):
        registry.arm("JobService.GetCustomJob", "slow")


def test_job_counts_use_short_lowercase_names() -> None:
    counts = job_state_counts({"JOB_STATE_RUNNING": 3, "JOB_STATE_SUCCEEDED": 1})
    assert counts["running"] == 3 and counts["succeeded"] == 1 and counts["queued"] == 0


def test_seconds_flags_accept_hold_and_negative_as_hold() -> None:
    assert _seconds("1.5") == 1.5
    assert _seconds("hold") is None
    assert _seconds("-1") is None
    with pytest.raises(argparse.ArgumentTypeError):
        _seconds("inf")
