"""How a step that does not return ends for its caller: job failures that are not Python
exceptions, cancellation from the caller's side, and payloads or results that were changed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from google.cloud import aiplatform_v1

from gcpjobs import RemoteStepError, fetch_result, run_remote, run_remote_async
from gcpjobs.emulator.process import EmulatorProcess
from tests.clients.conftest import official_client
from tests.steps import functions
from tests.steps.conftest import StepEnv, point_at, step_job, unique_label
from tests.waiting import wait_for_async

State = aiplatform_v1.JobState


def test_vertex_timeout(step_env: StepEnv) -> None:
    with pytest.raises(RemoteStepError) as raised:
        run_remote(functions.sleep_for, 60, settings={"maximum_run_time": "1s"})
    error = raised.value
    assert error.state == "FAILED"
    assert "ended without an outcome" in str(error)
    assert "maximum run time" in str(error)


def test_cloud_run_timeout(step_env: StepEnv) -> None:
    with pytest.raises(RemoteStepError) as raised:
        run_remote(functions.sleep_for, 60, settings={"kind": "cloud-run", "timeout": "1s"})
    assert raised.value.state == "FAILED"
    assert "ended without an outcome" in str(raised.value)


def test_killed_like_out_of_memory(step_env: StepEnv) -> None:
    with pytest.raises(RemoteStepError) as raised:
        run_remote(functions.kill_self)
    error = raised.value
    assert error.state == "FAILED" and error.job_name
    assert "ended without an outcome" in str(error) and "SIGKILL" in str(error)


def test_image_without_gcpjobs_fails_with_a_clear_error(step_env: StepEnv, tmp_path: Path) -> None:
    # An interpreter that cannot import gcpjobs (no site-packages), as in an image without it.
    python = tmp_path / "python-without-gcpjobs"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -S -I \"$@\"\n")
    python.chmod(0o755)
    with pytest.raises(RemoteStepError) as raised:
        run_remote(functions.add, 1, 2, settings={"python": str(python)})
    message = str(raised.value)
    assert "did not start" in message
    assert "pip install gcpjobs" in message
    assert raised.value.state == "FAILED"


async def test_cancelling_the_caller_cancels_the_job(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient,
) -> None:
    label = unique_label()
    call = asyncio.create_task(
        run_remote_async(functions.sleep_for, 300, settings={"labels": {"test": label}})
    )
    await asyncio.to_thread(step_job, jobs, label, "JOB_STATE_RUNNING")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    async def cancelled() -> bool:
        job = await asyncio.to_thread(step_job, jobs, label)
        return job.state == State.JOB_STATE_CANCELLED

    await wait_for_async(cancelled, timeout=30, message="the job to be cancelled")


async def test_cancelling_a_cloud_run_caller_cancels_the_execution(step_env: StepEnv) -> None:
    from gcpjobs.clients.cloudrun import AsyncCloudRunClient

    label = unique_label()
    call = asyncio.create_task(run_remote_async(
        functions.sleep_for, 300, settings={"kind": "cloud-run", "labels": {"test": label}}
    ))
    async with AsyncCloudRunClient() as client:
        async def running() -> Any:
            async for execution in client.list():
                if execution.labels.get("test") == label and execution.state.value == "RUNNING":
                    return execution
            return None

        execution = await wait_for_async(running, timeout=30, message="a running execution")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        result = await client.wait(execution.name, timeout=30)
        assert result.state.value == "CANCELLED"


CALLER = """
import sys
from gcpjobs import run_remote
from tests.steps import functions

print(run_remote(functions.{function}, *{args!r}, settings={{"labels": {{"test": {label!r}}}}}))
"""


def start_caller(step_env: StepEnv, tmp_path: Path, label: str, function: str,
                 *args: object) -> subprocess.Popen[str]:
    script = tmp_path / "caller.py"
    script.write_text(textwrap.dedent(CALLER.format(function=function, args=args, label=label)))
    return subprocess.Popen([sys.executable, str(script)], env=step_env.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_ctrl_c_cancels_the_job(
    step_env: StepEnv, tmp_path: Path, jobs: aiplatform_v1.JobServiceClient,
) -> None:
    label = unique_label()
    caller = start_caller(step_env, tmp_path, label, "sleep_for", 300)
    try:
        step_job(jobs, label, "JOB_STATE_RUNNING")
        caller.send_signal(signal.SIGINT)
        _, stderr = caller.communicate(timeout=60)
    finally:
        caller.kill()
    assert caller.returncode != 0
    assert "KeyboardInterrupt" in stderr
    step_job(jobs, label, "JOB_STATE_CANCELLED")


def test_result_outlives_the_caller(
    step_env: StepEnv, tmp_path: Path, jobs: aiplatform_v1.JobServiceClient,
) -> None:
    """The caller is killed while its step runs; the step goes on, and its outcome is fetched
    later by job name, from Python and from the command line."""
    label = unique_label()
    release = tmp_path / "release"
    caller = start_caller(step_env, tmp_path, label, "wait_for_file", str(release))
    try:
        job = step_job(jobs, label, "JOB_STATE_RUNNING")
    finally:
        caller.kill()
        caller.wait()
    release.write_text("finished after its caller")
    job_id = job.name.rsplit("/", 1)[-1]
    assert fetch_result(job_id) == "finished after its caller"  # waits for the end
    cli = subprocess.run([str(Path(sys.executable).with_name("gcpjobs")), "step", "result",
                          job.name], env=step_env.env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == "'finished after its caller'"


# ------------------------------------------------------------------------------- tampering


def unique_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A package only this test has (so its code archive is new to every cache) with a
    function that leaves a mark when it runs."""
    name = f"tamperlib_{unique_label()}"
    package = tmp_path / "project" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import pathlib\n"
        "def touch(path):\n"
        "    pathlib.Path(path).write_text('ran')\n"
    )
    monkeypatch.syspath_prepend(str(package.parent))
    return __import__(name)


@pytest.mark.parametrize("part", ["payload", "code"])
def test_the_job_refuses_a_changed_payload_or_archive(
    part: str, emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job is held in QUEUED while the store is changed under it; it must run nothing."""
    held: EmulatorProcess = emulator_factory(queued_seconds=None)
    point_at(monkeypatch, held, tmp_path)
    store = tmp_path / "store"
    monkeypatch.setenv("GCPJOBS_STEP_STORE", str(store))
    marker = tmp_path / "marker"
    package = unique_package(tmp_path, monkeypatch)
    jobs = official_client(held)
    label = unique_label()

    async def call_and_tamper() -> RemoteStepError:
        call = asyncio.create_task(
            run_remote_async(package.touch, str(marker), settings={"labels": {"test": label}})
        )
        job = await asyncio.to_thread(step_job, jobs, label, "JOB_STATE_QUEUED")
        if part == "payload":
            [run] = (store / "runs").iterdir()
            target = run / "payload"
        else:
            [target] = (store / "code").glob("*.zip")
        data = bytearray(target.read_bytes())
        data[-30] ^= 0xFF  # inside the pickle, or the zip's directory
        target.write_bytes(bytes(data))
        held.advance(job.name)
        with pytest.raises(RemoteStepError) as raised:
            await call
        return raised.value

    error = asyncio.run(call_and_tamper())
    jobs.transport.close()
    assert "refused to run" in str(error) and "nothing ran" in str(error)
    expected = "signature does not match" if part == "payload" else "code archive"
    assert expected in str(error)
    assert not marker.exists()


def test_the_caller_refuses_a_changed_result(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient,
) -> None:
    label = unique_label()
    assert run_remote(functions.echo, "genuine", settings={"labels": {"test": label}}) == "genuine"
    [run] = step_env.runs()
    result = run / "result"
    data = bytearray(result.read_bytes())
    data[-3] ^= 0xFF
    result.write_bytes(bytes(data))
    with pytest.raises(RemoteStepError, match="was refused and not unpickled: the result's "
                                              "signature does not match"):
        fetch_result(step_job(jobs, label).name)


def run_url_of(job: aiplatform_v1.CustomJob) -> str:
    [url] = job.job_spec.worker_pool_specs[0].container_spec.args
    return str(url)


def test_a_result_from_another_run_is_refused(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient,
) -> None:
    first, second = unique_label(), unique_label()
    run_remote(functions.echo, "first", settings={"labels": {"test": first}})
    run_remote(functions.echo, "second", settings={"labels": {"test": second}})
    first_run, second_run = (Path(run_url_of(step_job(jobs, label))) for label in (first, second))
    (second_run / "result").write_bytes((first_run / "result").read_bytes())
    with pytest.raises(RemoteStepError, match="signature does not match"):
        fetch_result(step_job(jobs, second).name)
    assert fetch_result(step_job(jobs, first).name) == "first"  # its own result still opens
