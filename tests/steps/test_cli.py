"""`gcpjobs step result NAME` (in this process; a step that raised through the real console
script): the outcome of a step fetched from its job, and a one-line error for each wrong
input."""

from __future__ import annotations

import contextlib
import pickle
import sys
from pathlib import Path

import pytest
from google.cloud import aiplatform_v1

from gcpjobs import run_remote
from gcpjobs.clients.vertex import VertexClient
from gcpjobs.specs.vertex import VertexJob
from tests.cli.support import assert_one_line_error, gcpjobs, gcpjobs_process
from tests.clients.conftest import target_for
from tests.steps import functions
from tests.steps.conftest import StepEnv, step_job, unique_label


def finished_step(jobs: aiplatform_v1.JobServiceClient, function: object, *args: object) -> str:
    """Run a step here; the name of its job."""
    label = unique_label()
    with contextlib.suppress(Exception):  # a step that raises is wanted too
        run_remote(function, *args, settings={"labels": {"test": label}})  # type: ignore[arg-type]
    return str(step_job(jobs, label).name)


def test_prints_the_value(step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient) -> None:
    name = finished_step(jobs, functions.echo, {"accuracy": 0.93})
    result = gcpjobs("step", "result", name.rsplit("/", 1)[-1], env=step_env.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'accuracy': 0.93}"


def test_writes_the_value_to_a_file(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient, tmp_path: Path,
) -> None:
    name = finished_step(jobs, functions.echo, [1, 2, 3])
    output = tmp_path / "value.pkl"
    result = gcpjobs("step", "result", name, "--output", str(output), env=step_env.env)
    assert result.returncode == 0, result.stderr
    assert pickle.loads(output.read_bytes()) == [1, 2, 3]


def test_a_step_that_raised(step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient) -> None:
    name = finished_step(jobs, functions.fail, "no data")
    result = gcpjobs_process("step", "result", name, env=step_env.env)
    assert result.returncode == 1
    assert "raise ValueError(message)" in result.stderr  # the job's traceback
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the remote step raised ValueError: no data")


def test_a_step_that_died(step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient) -> None:
    name = finished_step(jobs, functions.kill_self)
    result = gcpjobs("step", "result", name, env=step_env.env)
    assert_one_line_error(result, "ended without an outcome", "SIGKILL")
    assert result.returncode == 1


def test_a_cloud_run_step(step_env: StepEnv) -> None:
    from gcpjobs.clients.cloudrun import CloudRunClient

    label = unique_label()
    run_remote(functions.add, 2, 2, settings={"kind": "cloud-run", "keep_job": True,
                                               "name": f"cli-{label}", "labels": {"test": label}})
    with CloudRunClient() as client:
        [execution] = [e for e in client.list() if e.labels.get("test") == label]
    result = gcpjobs("step", "result", execution.job_id, env=step_env.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"


def test_no_wait_on_a_running_step(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient, tmp_path: Path,
) -> None:
    import threading

    release = tmp_path / "release"
    label = unique_label()
    caller = threading.Thread(target=run_remote, args=(functions.wait_for_file, str(release)),
                              kwargs={"settings": {"labels": {"test": label}}})
    caller.start()
    try:
        job = step_job(jobs, label, "JOB_STATE_RUNNING")
        result = gcpjobs("step", "result", job.name, "--no-wait", env=step_env.env)
        assert_one_line_error(result, "is still RUNNING", "without --no-wait")
        assert result.returncode == 1
    finally:
        release.write_text("done")
        caller.join(60)


def test_a_job_that_is_not_a_step(step_env: StepEnv) -> None:
    job = VertexJob(name="plain", image="python:3.11", command=[sys.executable, "-c", "pass"])
    with VertexClient(target=target_for(step_env.emulator)) as client:
        status = client.run(job)
    result = gcpjobs("step", "result", status.name, env=step_env.env)
    assert_one_line_error(result, "is not a gcpjobs remote step")
    assert result.returncode == 1


@pytest.mark.parametrize(("args", "fragments", "code"), [
    ((), ("Missing argument 'name'",), 2),
    (("123", "--kind", "gke"), ("kind: must be 'vertex' or 'cloud-run'",), 2),
    (("123", "--output", "/no/such/directory/value.pkl"), ("--output", "is not a directory"), 2),
    (("987654321",), ("NOT_FOUND",), 1),
    (("projects/p/locations/us-central1/customJobs",), ("is not a custom job name",), 1),
    (("no-such-execution-x1y2z",), ("NOT_FOUND",), 1),
])
def test_bad_input(step_env: StepEnv, args: tuple[str, ...], fragments: tuple[str, ...],
                   code: int) -> None:
    result = gcpjobs("step", "result", *args, env=step_env.env)
    assert_one_line_error(result, *fragments)
    assert result.returncode == code
