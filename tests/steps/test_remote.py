"""Remote steps against the emulator: each call really runs as a job (a process on this host),
through the official clients over a socket, and gives back what the function did."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from google.cloud import aiplatform_v1

from gcpjobs import RemoteStepError, remote, run_remote, run_remote_async
from gcpjobs.specs.labels import SUBMISSION_LABEL
from tests.steps import functions
from tests.steps.conftest import REPO, StepEnv, step_job, unique_label


@pytest.mark.parametrize(
    "value",
    [
        42,
        "text ✓",
        None,
        {"nested": [1, 2.5, (3, "four")], "set": frozenset({1, 2})},
        functions.StepFailure(3),  # an object of a class from the user's module
    ],
    ids=["int", "str", "none", "containers", "user-object"],
)
def test_returns_the_value(step_env: StepEnv, value: object) -> None:
    returned = run_remote(functions.echo, value)
    if isinstance(value, functions.StepFailure):
        assert isinstance(returned, functions.StepFailure) and returned.code == 3
    else:
        assert returned == value


def test_returns_a_large_numpy_array(step_env: StepEnv) -> None:
    array = run_remote(functions.make_array, 40, seed=7)
    assert isinstance(array, np.ndarray)
    assert array.nbytes == 40 * 1024 * 1024
    np.testing.assert_array_equal(array, functions.make_array(40, seed=7))


def test_sends_a_large_numpy_array(step_env: StepEnv) -> None:
    array = np.arange(3_000_000, dtype=np.float64)
    assert run_remote(np.sum, array) == array.sum()  # numpy's own function: no archive needed


def test_runs_in_a_job_of_its_own(step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient) -> None:
    label = unique_label()
    seen = run_remote(functions.where_am_i, settings={"labels": {"test": label},
                                                       "machine_type": "n1-standard-8"})
    job = step_job(jobs, label)
    assert job.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED
    assert seen["pid"] != os.getpid()
    assert seen["vertex_job"] == job.name.rsplit("/", 1)[-1]
    # The run id is the submission id; the key was taken out of the function's environment.
    assert seen["run_id"] == job.labels[SUBMISSION_LABEL]
    assert seen["has_key"] is False
    pool = job.job_spec.worker_pool_specs[0]
    assert pool.machine_spec.machine_type == "n1-standard-8"
    assert pool.container_spec.image_uri == "python:3.11-slim"
    assert list(pool.container_spec.command) == ["python", "-m", "gcpjobs.steps.entrypoint"]
    assert list(pool.container_spec.args) == [str(step_env.store / "runs" / seen["run_id"])]
    assert job.display_name.startswith("step-where_am_i-")


def test_builtin_exception_is_raised_again(step_env: StepEnv) -> None:
    with pytest.raises(ValueError, match=r"^bad input$") as raised:
        run_remote(functions.fail, "bad input")
    remote_traceback = str(raised.value.__cause__)
    assert "the traceback in the job" in remote_traceback
    assert "functions.py" in remote_traceback and "in fail" in remote_traceback


def test_user_exception_is_raised_again_with_its_data(step_env: StepEnv) -> None:
    with pytest.raises(functions.StepFailure) as raised:
        run_remote(functions.fail_custom, 5)
    assert raised.value.code == 5
    assert "raise StepFailure(code)" in str(raised.value.__cause__)


def test_exception_that_cannot_be_rebuilt_is_a_remote_step_error(step_env: StepEnv) -> None:
    with pytest.raises(RemoteStepError) as raised:
        run_remote(functions.fail_unrebuildable)
    error = raised.value
    assert error.type_name == "tests.steps.functions.Unrebuildable"
    assert error.remote_traceback is not None and "Unrebuildable" in error.remote_traceback
    assert "raised tests.steps.functions.Unrebuildable: left and right" in str(error)
    assert "\n" not in str(error)


def test_system_exit_in_the_job_does_not_exit_the_caller(step_env: StepEnv) -> None:
    with pytest.raises(RemoteStepError, match="raised SystemExit: 3"):
        run_remote(functions.exit_job, 3)


def test_a_value_that_cannot_be_pickled_back_is_an_error(step_env: StepEnv) -> None:
    with pytest.raises(TypeError, match="pickle") as raised:
        run_remote(functions.unpicklable_result)
    assert "could not be pickled to send it back" in str(raised.value.__cause__)


def test_decorated_function(step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient) -> None:
    label = unique_label()
    multiply = functions.decorated_multiply.with_settings(labels={"test": label})
    assert multiply(6, 7) == 42
    assert step_job(jobs, label).labels["test"] == label
    assert functions.decorated_multiply.local(6, 7) == 42  # and here, without a job


def test_decorated_function_raises_with_its_source_lines(step_env: StepEnv) -> None:
    with pytest.raises(functions.StepFailure) as raised:
        functions.decorated_fail()
    # Pickled by reference (module and name), so the job's traceback has file and source.
    assert "functions.py" in str(raised.value.__cause__)
    assert "raise StepFailure(7)" in str(raised.value.__cause__)


def test_function_under_another_decorator(step_env: StepEnv) -> None:
    with pytest.raises(functions.StepFailure) as raised:
        functions.traced_fail(8)
    assert raised.value.code == 8
    assert "raise StepFailure(code)" in str(raised.value.__cause__)  # sent by reference


def test_function_defined_in_a_test(step_env: StepEnv) -> None:
    offset = 100

    @remote
    def shifted(value: int) -> int:  # a closure: pickled by value
        return value + offset

    assert shifted(1) == 101


async def test_async_caller(step_env: StepEnv) -> None:
    results = await asyncio.gather(
        run_remote_async(functions.add, 1, 2),
        functions.decorated_multiply.run_async(3, 4),
        run_remote_async(functions.add, 5, b=5, settings={"kind": "cloud-run"}),
    )
    assert results == [3, 12, 10]


async def test_async_function_is_awaited_in_the_job(step_env: StepEnv) -> None:
    remote_add = remote(functions.async_add)
    assert await remote_add(20, 22) == 42


def test_cloud_run(step_env: StepEnv) -> None:
    seen = run_remote(functions.where_am_i, settings={"kind": "cloud-run", "cpu": "2",
                                                       "memory": "1Gi"})
    assert seen["cloud_run_execution"] and seen["cloud_run_execution"].startswith("step-where-am-i-")
    with pytest.raises(functions.StepFailure):
        run_remote(functions.fail_custom, 1, settings={"kind": "cloud-run"})


def test_code_of_a_package_that_is_not_installed(
    step_env: StepEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The package exists only in a directory on this process's sys.path: the job can import
    it only from the code archive. An edit is picked up by the next call; an unchanged
    package uploads nothing."""
    name = f"steplib_{unique_label()}"
    project = tmp_path / "project"
    package = project / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "scale.json").write_text('{"factor": 3}')  # package data travels too
    (package / "helpers.py").write_text("def offset():\n    return 1\n")
    (package / "model.py").write_text(
        "import json, pathlib\n"
        "from .helpers import offset\n"
        "def predict(x):\n"
        "    factor = json.loads((pathlib.Path(__file__).parent / 'scale.json').read_text())\n"
        "    return x * factor['factor'] + offset(), __file__\n"
    )
    monkeypatch.syspath_prepend(str(project))
    model = __import__(f"{name}.model", fromlist=["predict"])
    caplog.set_level(logging.INFO, logger="gcpjobs.steps")

    value, remote_file = run_remote(model.predict, 10)
    assert value == 31
    assert not remote_file.startswith(str(project))  # imported from the extracted archive
    assert len(step_env.archives()) == 1
    assert "uploaded" in caplog.records[-1].getMessage()

    assert run_remote(model.predict, 10)[0] == 31
    assert "unchanged, 0 bytes uploaded" in caplog.records[-1].getMessage()
    assert len(step_env.archives()) == 1

    (package / "helpers.py").write_text("def offset():\n    return 2\n")
    assert run_remote(model.predict, 10)[0] == 32  # no rebuild, no reinstall
    assert len(step_env.archives()) == 2


def test_no_code_archive_when_the_image_has_the_code(step_env: StepEnv) -> None:
    # As if the image had this repository installed: the job finds the module on its path.
    settings = {"code_dir": False, "env": {"PYTHONPATH": str(REPO)}}
    assert run_remote(functions.add, 1, 1, settings=settings) == 2
    assert step_env.archives() == []
