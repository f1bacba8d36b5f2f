"""The examples run: a script whose training function runs as a job, and a Prefect flow whose
training task runs remotely, reaching Completed on a real Prefect server."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.steps.conftest import REPO, StepEnv

EXAMPLES = REPO / "examples" / "steps"


def test_script_example(step_env: StepEnv) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "train_script.py")], env=step_env.env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    score = re.search(r"accuracy (\d\.\d+)", done.stdout)
    assert score is not None and float(score.group(1)) > 0.85, done.stdout
    assert "job projects/gcpjobs-local/locations/us-central1/customJobs/" in done.stderr
    assert len(step_env.runs()) == 1


def test_prefect_flow_with_a_remote_task(
    step_env: StepEnv, prefect_server: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect import get_client
    from prefect.client.schemas.objects import StateType

    monkeypatch.syspath_prepend(str(EXAMPLES))
    import prefect_flow

    state: Any = prefect_flow.training_pipeline(samples=500, epochs=100, return_state=True)
    assert state.is_completed(), state
    assert state.result() > 0.85

    async def server_side() -> Any:
        async with get_client() as client:
            return await client.read_flow_run(state.state_details.flow_run_id)

    flow_run = asyncio.run(server_side())
    assert flow_run.state.type == StateType.COMPLETED
    [run] = step_env.runs()  # the training ran as one step job
    assert (run / "result").exists()
