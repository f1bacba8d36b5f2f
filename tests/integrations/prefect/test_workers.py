"""The Prefect workers end to end: a real Prefect server (Prefect's test harness), the gcpjobs
emulator, and flow runs of deployments of examples/prefect/flows.py that really run as jobs
(`prefect flow-run execute` in a process the emulator starts), for both worker types."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from google.cloud import aiplatform_v1, run_v2
from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import InfrastructureNotFound
from prefect.states import Cancelling
from prefect.workers.base import BaseWorker

from gcpjobs.clients.target import EMULATOR_HOST_ENV, EMULATOR_PROJECT
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import GcpJobsError
from gcpjobs.integrations.prefect import CloudRunWorker, VertexWorker
from gcpjobs.integrations.prefect.worker import (
    CANCEL_POLL_ENV,
    FORWARD_LOGS_ENV,
    GcpJobsWorker,
    cancel_poll_seconds,
    forward_logs_enabled,
)
from tests.waiting import wait_for, wait_for_async

pytestmark = pytest.mark.timeout(240)

EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "examples" / "prefect"
WORKERS = [VertexWorker, CloudRunWorker]
FLOW_RUN_LABEL = "prefect-io-flow-run-id"
LOCATION = f"projects/{EMULATOR_PROJECT}/locations/us-central1"


@pytest.fixture()
def prefect_env(prefect_server: str, emulator: EmulatorProcess,
                monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Workers and the jobs they start talk to the session's emulator and Prefect server."""
    monkeypatch.setenv(EMULATOR_HOST_ENV, emulator.grpc_address)
    monkeypatch.setenv(CANCEL_POLL_ENV, "0.5")
    yield prefect_server


@pytest.fixture()
async def prefect() -> AsyncIterator[PrefectClient]:
    async with get_client() as client:
        yield client


async def deploy(client: PrefectClient, worker: type[GcpJobsWorker], flow_name: str,
                 job_variables: dict[str, Any] | None = None) -> tuple[str, Any]:
    """A fresh work pool of the worker's type, and a deployment of `flow_name` in it that runs
    the flow from this repository's examples/prefect directory."""
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    await client.create_work_pool(WorkPoolCreate(
        name=pool, type=worker.type, base_job_template=worker.get_default_base_job_template()))
    flow_id = await client.create_flow_from_name(flow_name)
    deployment_id = await client.create_deployment(
        flow_id=flow_id, name=f"{flow_name}-{pool}", work_pool_name=pool,
        entrypoint=f"flows.py:{flow_name}", path=str(EXAMPLE_DIR),
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {
            "directory": str(EXAMPLE_DIR)}}],
        job_variables={"image": "prefecthq/prefect:3-latest", **(job_variables or {})},
    )
    return pool, deployment_id


async def final_state(client: PrefectClient, flow_run_id: Any, timeout: float = 120) -> FlowRun:
    async def ended() -> FlowRun | None:
        run = await client.read_flow_run(flow_run_id)
        return run if run.state is not None and run.state.is_final() else None

    return await wait_for_async(ended, timeout=timeout, interval=0.2,
                                message=f"flow run {flow_run_id} to end")


async def run_flow(client: PrefectClient, worker_type: type[GcpJobsWorker], flow_name: str, *,
                   parameters: dict[str, Any] | None = None,
                   job_variables: dict[str, Any] | None = None) -> FlowRun:
    pool, deployment_id = await deploy(client, worker_type, flow_name, job_variables)
    flow_run = await client.create_flow_run_from_deployment(deployment_id,
                                                            parameters=parameters or {})
    async with worker_type(work_pool_name=pool, create_pool_if_not_found=False) as worker:
        await worker.get_and_submit_flow_runs()
        return await final_state(client, flow_run.id)


async def log_text(client: PrefectClient, flow_run_id: Any, *expected: str) -> str:
    """The flow run's log once every `expected` text is in it (logs reach the API in
    batches, after the states that they describe)."""
    async def read() -> str | None:
        logs = await client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200, offset=0)
        text = "\n".join(log.message for log in logs)
        return text if all(part in text for part in expected) else None

    return await wait_for_async(read, timeout=30, interval=0.2,
                                message=f"{expected} in the log of flow run {flow_run_id}")


def jobs_of(emulator: EmulatorProcess, worker_type: type[GcpJobsWorker],
            flow_run_id: Any) -> list[Any]:
    """What the emulator holds for a flow run, through the official clients: custom jobs, or
    the executions of every Cloud Run job."""
    channel = grpc.insecure_channel(emulator.grpc_address)
    try:
        if worker_type is VertexWorker:
            vertex = aiplatform_v1.JobServiceClient(
                transport=JobServiceGrpcTransport(channel=channel))
            return list(vertex.list_custom_jobs(request={
                "parent": LOCATION, "filter": f"labels.{FLOW_RUN_LABEL}={flow_run_id}"}))
        executions = run_v2.ExecutionsClient(
            transport=run_v2.services.executions.transports.ExecutionsGrpcTransport(
                channel=channel))
        return [e for e in executions.list_executions(parent=f"{LOCATION}/jobs/-")
                if e.labels.get(FLOW_RUN_LABEL) == str(flow_run_id)]
    finally:
        channel.close()


# ------------------------------------------------------------------------------ registration


def test_worker_types_are_found_through_prefects_entry_points() -> None:
    assert BaseWorker.get_worker_class_from_type("gcpjobs-vertex") is VertexWorker
    assert BaseWorker.get_worker_class_from_type("gcpjobs-cloud-run") is CloudRunWorker


def test_prefect_cli_creates_a_pool_with_our_default_template(prefect_server: str) -> None:
    """`prefect work-pool create P --type gcpjobs-vertex`, the command users type."""
    import asyncio

    pool = f"cli-pool-{uuid.uuid4().hex[:8]}"
    prefect_cli = Path(sys.executable).parent / "prefect"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    done = subprocess.run([str(prefect_cli), "work-pool", "create", pool, "--type",
                           "gcpjobs-vertex"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_work_pool(pool)

    created = asyncio.run(read())
    assert created.type == "gcpjobs-vertex"
    assert created.base_job_template == VertexWorker.get_default_base_job_template()


# ------------------------------------------------------------------------------ flow runs


@pytest.mark.parametrize("worker_type", WORKERS, ids=lambda w: w.type)
async def test_flow_run_completes_as_exactly_one_job(
        worker_type: type[GcpJobsWorker], prefect_env: str, prefect: PrefectClient,
        emulator: EmulatorProcess) -> None:
    before = emulator.stats()["requests"]
    run = await run_flow(prefect, worker_type, "hello", parameters={"name": "gcpjobs"})
    after = emulator.stats()["requests"]

    assert run.state is not None and run.state.type is StateType.COMPLETED, run.state
    assert await run.state.result() == "hello gcpjobs"
    # Exactly one job ran (a Cloud Run job is deleted once its execution has ended, unless
    # keep_job: the emulator's counters tell what was asked of it).
    starts = ("CreateCustomJob",) if worker_type is VertexWorker else ("CreateJob", "RunJob")
    for method in starts:
        assert _count(after, method) - _count(before, method) == 1, method
    name = run.infrastructure_pid
    assert name and name.startswith(f"{LOCATION}/")
    if worker_type is VertexWorker:
        assert [job.name for job in jobs_of(emulator, worker_type, run.id)] == [name]
    source = "workerpool0-0" if worker_type is VertexWorker else "task-0"
    logs = await log_text(prefect, run.id,
                          "hello gcpjobs, from job",  # printed inside the job
                          f"Created {worker_type.service_name} job {name}",
                          f"RUNNING -> SUCCEEDED {name}")  # the worker's state-change lines
    # The job's own output, forwarded by the worker (the flow's print went to its stderr).
    assert any(line.startswith(f"[{source}") and "hello gcpjobs, from job" in line
               for line in logs.splitlines()), logs


@pytest.mark.parametrize("worker_type", WORKERS, ids=lambda w: w.type)
async def test_failing_flow_ends_failed(worker_type: type[GcpJobsWorker], prefect_env: str,
                                        prefect: PrefectClient) -> None:
    run = await run_flow(prefect, worker_type, "fails")

    assert run.state is not None and run.state.type is StateType.FAILED, run.state
    await log_text(prefect, run.id, "this flow fails on purpose")


@pytest.mark.parametrize("worker_type", WORKERS, ids=lambda w: w.type)
async def test_job_that_cannot_start_leaves_the_flow_run_crashed_with_the_reason(
        worker_type: type[GcpJobsWorker], prefect_env: str, prefect: PrefectClient) -> None:
    run = await run_flow(prefect, worker_type, "hello",
                         job_variables={"command": "no-such-command-gcpjobs --flag"})

    assert run.state is not None and run.state.type is StateType.CRASHED, run.state
    assert "no-such-command-gcpjobs" in (run.state.message or "")
    logs = await log_text(prefect, run.id, "ended FAILED", "no-such-command-gcpjobs")
    # What the job wrote about it reached the flow run's log too, though no flow ever ran.
    assert "] " in logs and logs.count("no-such-command-gcpjobs") >= 2, logs


@pytest.mark.parametrize("worker_type", WORKERS, ids=lambda w: w.type)
async def test_cancelling_the_flow_run_cancels_the_job_and_its_processes(
        worker_type: type[GcpJobsWorker], prefect_env: str, prefect: PrefectClient,
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    pid_file = tmp_path / "flow.pid"
    pool, deployment_id = await deploy(prefect, worker_type, "sleeps", {"keep_job": True}
                                       if worker_type is CloudRunWorker else None)
    flow_run = await prefect.create_flow_run_from_deployment(
        deployment_id, parameters={"seconds": 600, "pid_file": str(pid_file)})
    async with worker_type(work_pool_name=pool, create_pool_if_not_found=False) as worker:
        await worker.get_and_submit_flow_runs()
        pid = int(await wait_for_async(_read_text(pid_file), timeout=90, interval=0.1,
                                       message="the flow to start in its job"))
        await prefect.set_flow_run_state(flow_run.id, Cancelling(), force=True)
        run = await final_state(prefect, flow_run.id)

    assert run.state is not None and run.state.type is StateType.CANCELLED, run.state
    jobs = jobs_of(emulator, worker_type, run.id)
    assert len(jobs) == 1
    if worker_type is VertexWorker:
        assert jobs[0].state == aiplatform_v1.JobState.JOB_STATE_CANCELLED
    else:
        assert jobs[0].cancelled_count == 1 and jobs[0].completion_time
    wait_for(lambda: not psutil.pid_exists(pid) or
             psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             timeout=15, message=f"the flow's process {pid} to be gone")


def _read_text(path: Path) -> Any:
    async def read() -> str | None:
        return path.read_text() if path.exists() and path.read_text() else None
    return read


async def test_deployment_job_variable_reaches_the_vertex_request(
        prefect_env: str, prefect: PrefectClient, emulator: EmulatorProcess) -> None:
    run = await run_flow(prefect, VertexWorker, "hello", job_variables={
        "machine_type": "n1-highmem-2", "labels": {"team": "ml-research"},
        "env": {"EXTRA_SETTING": "on"}})

    assert run.state is not None and run.state.type is StateType.COMPLETED, run.state
    [job] = jobs_of(emulator, VertexWorker, run.id)
    pool = job.job_spec.worker_pool_specs[0]
    assert pool.machine_spec.machine_type == "n1-highmem-2"
    assert job.labels["team"] == "ml-research"
    env = {e.name: e.value for e in pool.container_spec.env}
    assert env["EXTRA_SETTING"] == "on"
    assert env["PREFECT__FLOW_RUN_ID"] == str(run.id)
    assert list(pool.container_spec.command) == ["prefect", "flow-run", "execute"]


async def test_deployment_job_variable_reaches_the_cloud_run_request(
        prefect_env: str, prefect: PrefectClient, emulator: EmulatorProcess) -> None:
    run = await run_flow(prefect, CloudRunWorker, "hello", job_variables={
        "memory": "1Gi", "keep_job": True, "max_retries": 0})

    assert run.state is not None and run.state.type is StateType.COMPLETED, run.state
    [execution] = jobs_of(emulator, CloudRunWorker, run.id)
    channel = grpc.insecure_channel(emulator.grpc_address)
    try:
        jobs = run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel))
        job = jobs.get_job(name=execution.job if "/" in execution.job
                           else f"{LOCATION}/jobs/{execution.job}")
    finally:
        channel.close()
    container = job.template.template.containers[0]
    assert container.resources.limits["memory"] == "1Gi"
    assert list(container.command) == ["prefect", "flow-run", "execute"]


async def test_one_worker_follows_many_flow_runs_with_list_calls(
        prefect_env: str, prefect: PrefectClient, emulator: EmulatorProcess) -> None:
    """Several flow runs in flight through one worker: the shared watcher lists, it does not
    get each job every cycle (a Get happens only when a job has ended)."""
    pool, deployment_id = await deploy(prefect, VertexWorker, "hello")
    runs = [await prefect.create_flow_run_from_deployment(deployment_id,
                                                          parameters={"name": f"n{i}"})
            for i in range(4)]
    before = emulator.stats()["requests"]
    async with VertexWorker(work_pool_name=pool, create_pool_if_not_found=False) as worker:
        await worker.get_and_submit_flow_runs()
        finals = [await final_state(prefect, run.id) for run in runs]
    after = emulator.stats()["requests"]

    assert all(r.state is not None and r.state.type is StateType.COMPLETED for r in finals)
    calls = {method: _count(after, method) - _count(before, method)
             for method in ("ListCustomJobs", "GetCustomJob", "CreateCustomJob")}
    assert calls["CreateCustomJob"] == len(runs)
    assert calls["ListCustomJobs"] > 0
    # Per-job polling would Get every job every cycle; here a Get is only for a job that ended.
    assert calls["GetCustomJob"] <= len(runs), calls


def _count(requests: dict[str, Any], method: str) -> int:
    """Calls of `method` ("CreateJob") in the emulator's counters ("Jobs.CreateJob": n)."""
    return sum(int(count) for key, count in requests.items()
               if key.rsplit(".", 1)[-1] == method)


async def test_example_deploy_script_deploys_to_a_gcpjobs_pool(
        prefect_env: str, prefect: PrefectClient) -> None:
    """examples/prefect/deploy.py, as its README has users run it."""
    pool = f"example-pool-{uuid.uuid4().hex[:8]}"
    await prefect.create_work_pool(WorkPoolCreate(
        name=pool, type=VertexWorker.type,
        base_job_template=VertexWorker.get_default_base_job_template()))
    done = subprocess.run([sys.executable, str(EXAMPLE_DIR / "deploy.py"), pool],
                          env={**os.environ, "PREFECT_API_URL": prefect_env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    deployment = await prefect.read_deployment_by_name("hello/hello")
    assert deployment.work_pool_name == pool
    assert deployment.entrypoint == "flows.py:hello"
    assert deployment.job_variables == {"image": "prefecthq/prefect:3-latest"}


# ------------------------------------------------------------------------------ kill, settings


@pytest.mark.parametrize("worker_type", WORKERS, ids=lambda w: w.type)
async def test_killing_a_job_that_is_gone_is_infrastructure_not_found(
        worker_type: type[GcpJobsWorker], prefect_env: str) -> None:
    configuration = await worker_type.job_configuration.from_template_and_values(
        worker_type.get_default_base_job_template(), {"image": "prefecthq/prefect:3-latest"})
    missing = (f"{LOCATION}/customJobs/4242424242" if worker_type is VertexWorker
               else f"{LOCATION}/jobs/gone-job/executions/gone-job-abcde")
    worker = worker_type(work_pool_name="unused")
    with pytest.raises(InfrastructureNotFound, match="was not found"):
        await worker.kill_infrastructure(missing, configuration)


async def test_killing_a_job_that_has_ended_is_infrastructure_not_found(
        prefect_env: str, emulator: EmulatorProcess) -> None:
    from gcpjobs.clients.vertex import AsyncVertexClient
    from gcpjobs.specs.vertex import VertexJob

    async with AsyncVertexClient() as client:
        ended = await client.run(VertexJob(name="ends", image="python:3.11",
                                           command=[sys.executable, "-c", "pass"]))
    assert ended.succeeded
    configuration = await VertexWorker.job_configuration.from_template_and_values(
        VertexWorker.get_default_base_job_template(), {"image": "prefecthq/prefect:3-latest"})
    with pytest.raises(InfrastructureNotFound, match="has already ended"):
        await VertexWorker(work_pool_name="unused").kill_infrastructure(ended.name, configuration)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_a_bad_cancel_poll_interval_is_one_line(value: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CANCEL_POLL_ENV, value)
    with pytest.raises(GcpJobsError) as caught:
        cancel_poll_seconds()
    message = str(caught.value)
    assert "\n" not in message and CANCEL_POLL_ENV in message and "above 0" in message


def test_the_cancel_poll_interval_is_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CANCEL_POLL_ENV, "0.25")
    assert cancel_poll_seconds() == 0.25
    monkeypatch.delenv(CANCEL_POLL_ENV)
    assert cancel_poll_seconds() == 2.0


def test_the_credentials_block_type_registers_with_prefects_cli(prefect_server: str) -> None:
    """`prefect block register -m gcpjobs.integrations.prefect.credentials`, as the docs say."""
    prefect_cli = Path(sys.executable).parent / "prefect"
    done = subprocess.run(
        [str(prefect_cli), "block", "register", "-m", "gcpjobs.integrations.prefect.credentials"],
        env={**os.environ, "PREFECT_API_URL": prefect_server}, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gcpjobs Credentials" in done.stdout


# ------------------------------------------------------------------------------ re-attach


async def test_a_new_worker_re_attaches_to_the_job_of_a_worker_that_died(
        prefect_env: str, prefect: PrefectClient, emulator: EmulatorProcess) -> None:
    """A worker (the real `prefect worker start`) is killed after creating a job; the job then
    fails before the flow could report. The next worker of the pool re-attaches to the job
    and leaves the flow run Crashed with the job's error, instead of Pending forever."""
    failing = f"{sys.executable} -c 'import time; time.sleep(3); raise SystemExit(3)'"
    pool, deployment_id = await deploy(prefect, VertexWorker, "hello", {"command": failing})
    flow_run = await prefect.create_flow_run_from_deployment(deployment_id)
    env = {**os.environ, "PREFECT_API_URL": prefect_env, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    first_worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", pool],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        async def job_created() -> str | None:
            return (await prefect.read_flow_run(flow_run.id)).infrastructure_pid

        name = await wait_for_async(job_created, timeout=90, interval=0.2,
                                    message="the first worker to create the job")
    finally:
        os.killpg(first_worker.pid, signal.SIGKILL)
        first_worker.wait(timeout=30)
    assert (await prefect.read_flow_run(flow_run.id)).state_type is not StateType.CRASHED

    async with VertexWorker(work_pool_name=pool, create_pool_if_not_found=False) as worker:
        await worker.get_and_submit_flow_runs()
        run = await final_state(prefect, flow_run.id)

    assert run.state is not None and run.state.type is StateType.CRASHED, run.state
    assert f"Vertex AI job {name} ended FAILED" in (run.state.message or ""), run.state.message
    await log_text(prefect, run.id, f"Re-attached to Vertex AI job {name}", "ended FAILED")
    assert [job.name for job in jobs_of(emulator, VertexWorker, run.id)] == [name]


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_bad_forward_logs_setting_is_one_line(value: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORWARD_LOGS_ENV, value)
    with pytest.raises(GcpJobsError, match=rf"^{FORWARD_LOGS_ENV}='{value}' must be true or false$"):
        forward_logs_enabled()


async def test_log_forwarding_can_be_turned_off(
        prefect_env: str, prefect: PrefectClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORWARD_LOGS_ENV, "false")
    run = await run_flow(prefect, VertexWorker, "hello", parameters={"name": "quiet"})
    logs = await log_text(prefect, run.id, "hello quiet, from job", "RUNNING -> SUCCEEDED")
    assert "[workerpool0-0]" not in logs
