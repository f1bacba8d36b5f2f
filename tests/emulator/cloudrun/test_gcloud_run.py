"""The installed `gcloud` drives Cloud Run jobs on the emulator, unchanged: `gcloud run jobs
create|describe|list|update|execute|delete` and `executions list|describe|cancel|delete`,
`executions tasks list`, with the configuration `gcpjobs emulator env --gcloud` writes (endpoint
override, and the emulator as HTTP proxy for the regional hosts gcloud derives).

Each gcloud call costs 1-2 s of CPU: one configuration for the module, a dozen calls in all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from gcpjobs.cli.emulator_env import gcloud_properties, write_gcloud_configuration
from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import PROJECT, RunClients, run_clients
from tests.waiting import wait_for

GCLOUD = shutil.which("gcloud")
pytestmark = pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed on this machine")
REGION = "us-central1"
CONFIGURATION = "gcpjobs-test"


class Gcloud:
    def __init__(self, config_dir: Path) -> None:
        # Only this test's configuration: nothing from the user's gcloud set-up or shell.
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("CLOUDSDK_")}
        self.env.update(CLOUDSDK_CONFIG=str(config_dir),
                        CLOUDSDK_ACTIVE_CONFIG_NAME=CONFIGURATION,
                        CLOUDSDK_CORE_DISABLE_PROMPTS="1")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert GCLOUD is not None
        result = subprocess.run([GCLOUD, *args], env=self.env, capture_output=True, text=True,
                                timeout=110, check=False)
        if check:
            assert result.returncode == 0, f"gcloud {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--format=json").stdout)


@pytest.fixture(scope="module")
def gcloud(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Gcloud:
    config_dir = tmp_path_factory.mktemp("gcloud")
    write_gcloud_configuration(
        CONFIGURATION, gcloud_properties(emulator.rest_endpoint, project=PROJECT, region=REGION),
        config_dir)
    (config_dir / "active_config").write_text(CONFIGURATION)
    return Gcloud(config_dir)


@pytest.fixture()
def rest_run(emulator: EmulatorProcess) -> Iterator[RunClients]:
    clients = run_clients(emulator, "rest")
    yield clients
    clients.close()


def test_gcloud_run_jobs_against_the_emulator(gcloud: Gcloud, rest_run: RunClients) -> None:
    job = f"gc-{uuid.uuid4().hex[:8]}"
    job_name = f"projects/{PROJECT}/locations/{REGION}/jobs/{job}"
    gcloud.run("run", "jobs", "create", job, "--image", "us-docker.pkg.dev/x/y:latest",
               "--command", "sh", "--args=-c,echo hello from gcloud", "--tasks", "2",
               "--max-retries", "0", "--set-env-vars", "A=1", "--labels", "team=x",
               "--task-timeout", "90s")
    # The job gcloud made is the v2 job.
    created = rest_run.jobs.get_job(name=job_name)
    assert list(created.template.template.containers[0].args) == ["-c", "echo hello from gcloud"]
    assert (created.template.task_count, created.client, dict(created.labels)) == (
        2, "gcloud", {"team": "x"})

    described = gcloud.json("run", "jobs", "describe", job)
    assert described["metadata"]["uid"] == created.uid
    assert described["spec"]["template"]["spec"]["template"]["spec"]["timeoutSeconds"] == "90"

    # No --region on `list`'s global endpoint: every region.
    listed = gcloud.json("run", "jobs", "list")
    assert job in [item["metadata"]["name"] for item in listed]

    gcloud.run("run", "jobs", "execute", job, "--wait")
    (execution,) = gcloud.json("run", "jobs", "executions", "list", "--job", job)
    execution_id = execution["metadata"]["name"]
    v2_execution = rest_run.executions.get_execution(name=f"{job_name}/executions/{execution_id}")
    assert v2_execution.succeeded_count == 2 and "completion_time" in v2_execution

    shown = gcloud.json("run", "jobs", "executions", "describe", execution_id)
    assert {c["type"]: c["status"] for c in shown["status"]["conditions"]}["Completed"] == "True"
    tasks = gcloud.json("run", "jobs", "executions", "tasks", "list", "--execution", execution_id)
    assert sorted(t["status"]["index"] for t in tasks) == [0, 1]
    assert {t["metadata"]["labels"]["run.googleapis.com/runningState"] for t in tasks} == {
        "Succeeded"}

    gcloud.run("run", "jobs", "update", job, "--args=-c,sleep 100", "--tasks", "1")
    assert list(rest_run.jobs.get_job(name=job_name).template.template.containers[0].args) == [
        "-c", "sleep 100"]
    gcloud.run("run", "jobs", "execute", job, "--async")
    running = next(e for e in rest_run.executions.list_executions(parent=job_name)
                   if e.name.rsplit("/", 1)[-1] != execution_id)
    gcloud.run("run", "jobs", "executions", "cancel", running.name.rsplit("/", 1)[-1])
    wait_for(lambda: "completion_time" in rest_run.executions.get_execution(name=running.name),
             timeout=60, message="the cancelled execution to end")
    assert rest_run.executions.get_execution(name=running.name).cancelled_count == 1

    gcloud.run("run", "jobs", "executions", "delete", execution_id)
    with pytest.raises(exceptions.NotFound):
        rest_run.executions.get_execution(name=f"{job_name}/executions/{execution_id}")
    gcloud.run("run", "jobs", "delete", job)
    with pytest.raises(exceptions.NotFound):
        rest_run.jobs.get_job(name=job_name)
