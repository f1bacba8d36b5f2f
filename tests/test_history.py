"""The run history store (gcpjobs.history) on its own: permissions, pruning, several writing
processes at once, and finding a run by the names a user has for it."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gcpjobs.history import RunHistory, status_from_json, status_to_json
from gcpjobs.results import JobError, JobStatus, TaskCounts
from gcpjobs.states import JobState

TARGET = "emulator 127.0.0.1:8470"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def vertex_status(job_id: str, display_name: str = "train", state: JobState = JobState.QUEUED,
                  ) -> JobStatus:
    return JobStatus(name=f"projects/p/locations/us-central1/customJobs/{job_id}",
                     display_name=display_name, state=state, create_time=CREATED,
                     end_time=CREATED + timedelta(seconds=9) if state.is_terminal else None)


def record(history: RunHistory, status: JobStatus, submission_id: str = "abc123") -> None:
    history.record_submission(target=TARGET, status=status, submission_id=submission_id,
                              spec_digest="sha256:00")


def test_the_file_is_private_to_its_owner(tmp_path: Path) -> None:
    history = RunHistory(tmp_path / "data" / "history" / "runs.sqlite3")
    record(history, vertex_status("1"))
    assert stat.S_IMODE(history.path.parent.stat().st_mode) == 0o700
    for path in history.path.parent.iterdir():  # the database and its WAL files
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_pruning_keeps_the_newest_runs(tmp_path: Path) -> None:
    history = RunHistory(tmp_path / "runs.sqlite3", keep=5)
    for number in range(1, 13):
        record(history, vertex_status(str(number)))
    assert [r.job_id for r in history.recent()] == ["12", "11", "10", "9", "8"]
    assert [r.job_id for r in history.recent(2)] == ["12", "11"]


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    writer = textwrap.dedent(f"""
        import sys
        from datetime import datetime, timezone
        from gcpjobs.history import RunHistory
        from gcpjobs.results import JobStatus
        from gcpjobs.states import JobState
        history = RunHistory({str(path)!r})
        for number in range(150):
            name = f"projects/p/locations/r/customJobs/{{sys.argv[1]}}{{number}}"
            status = JobStatus(name=name, display_name="d", state=JobState.QUEUED,
                               create_time=datetime.now(timezone.utc))
            history.record_submission(target="t", status=status, submission_id="s",
                                      spec_digest="x")
            ended = JobStatus(name=name, display_name="d", state=JobState.SUCCEEDED,
                              end_time=datetime.now(timezone.utc))
            assert history.record_status(target="t", status=ended)
    """)
    writers = [subprocess.Popen([sys.executable, "-c", writer, prefix]) for prefix in "12"]
    assert [process.wait(timeout=100) for process in writers] == [0, 0]
    runs = RunHistory(path).recent()
    assert len(runs) == 300
    assert {r.job_id for r in runs} == {f"{p}{n}" for p in "12" for n in range(150)}
    assert all(r.state is JobState.SUCCEEDED and r.ended_at for r in runs)


def test_a_run_is_found_by_every_name_it_answers_to(tmp_path: Path) -> None:
    history = RunHistory(tmp_path / "runs.sqlite3")
    record(history, vertex_status("41", "train"), submission_id="aa11bb22")
    record(history, vertex_status("42", "train-aa11"), submission_id="aa11ffff")
    execution = JobStatus(
        name="projects/p/locations/us-central1/jobs/etl-9f8e7d6c/executions/etl-9f8e7d6c-x1y2z",
        display_name="etl-9f8e7d6c", state=JobState.RUNNING, kind="cloud-run")
    record(history, execution, submission_id="9f8e7d6c00")

    def found(name: str, region: str | None = "us-central1") -> list[str]:
        return [r.job_id for r in history.lookup(name, target=TARGET, region=region)]

    assert found("41") == ["41"]
    assert found("projects/p/locations/us-central1/customJobs/42") == ["42"]
    assert found("train") == ["42", "41"]  # 42 is "train" plus its submission suffix
    assert found("etl") == ["etl-9f8e7d6c-x1y2z"]
    assert found("etl-9f8e7d6c") == ["etl-9f8e7d6c-x1y2z"]
    assert found("etl-9f8e7d6c-x1y2z") == ["etl-9f8e7d6c-x1y2z"]
    assert found("tra") == [] and found("train_") == [] and found("41", "europe-west4") == []
    assert history.lookup("41", target="emulator 127.0.0.1:9999") == []


def test_the_first_end_recorded_is_kept(tmp_path: Path) -> None:
    history = RunHistory(tmp_path / "runs.sqlite3")
    assert not history.record_status(target=TARGET, status=vertex_status("7", state=JobState.FAILED))
    record(history, vertex_status("7"))
    assert history.record_status(target=TARGET, status=vertex_status("7", state=JobState.FAILED))
    assert not history.record_status(
        target=TARGET, status=vertex_status("7", state=JobState.SUCCEEDED))
    (run,) = history.recent()
    assert run.state is JobState.FAILED and run.status.state is JobState.FAILED
    assert run.ended_at == CREATED + timedelta(seconds=9)


def test_a_status_survives_the_round_trip() -> None:
    status = JobStatus(
        name="projects/p/locations/r/jobs/j/executions/j-1", display_name="j",
        state=JobState.FAILED, kind="cloud-run", create_time=CREATED, start_time=CREATED,
        end_time=CREATED, update_time=CREATED, error=JobError(9, "task failed"),
        labels={"team": "ml"}, web_access_uris={"workerpool0-0": "https://x"},
        tasks=TaskCounts(task_count=2, failed=1, succeeded=1, retried=3),
    )
    assert status_from_json(status_to_json(status)) == status
