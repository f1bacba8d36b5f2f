"""prefect-gcp's own Cloud Run workers against the emulator: `cloud-run` (Cloud Run Admin API
v1) and `cloud-run-v2`, the real worker code of prefect-gcp 0.6.22, started in this process on
the session's real Prefect server, run a deployment of examples/prefect/flows.py:hello to
Completed; the emulator runs the flow (`prefect flow-run execute`, the workers' default command)
on this host.

What is patched, and nothing else: each worker's `_get_client(configuration)`, the one place
where it builds its Google client (prefect_gcp/workers/cloud_run.py `CloudRunWorker._get_client`,
prefect_gcp/workers/cloud_run_v2.py `CloudRunWorkerV2._get_client`). The replacements build the
same `googleapiclient.discovery.build("run", "v1"|"v2", ...)` resource with another endpoint:

- v1: `https://{region}-run.googleapis.com` becomes `http://{region}-127.0.0.1:PORT`, the
  emulator's regional host (the region is the host's in v1, as on Google Cloud). No resolver
  knows that name, so the client's httplib2 `Http` dials the emulator's REST port for it (what
  an /etc/hosts line would do; `_DialEmulator`), unauthenticated (`http=` excludes credentials).
- v2: `https://run.googleapis.com` becomes `http://127.0.0.1:PORT/`, with AnonymousCredentials.

The workers still build their GcpCredentials block from Application Default Credentials, as
they would on a laptop: `GOOGLE_APPLICATION_CREDENTIALS` names an `authorized_user` file (what
`gcloud auth application-default login` writes, with dummy secrets; nothing refreshes it) whose
quota project is the emulator's project.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httplib2
import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from googleapiclient import discovery
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.workers.base import BaseWorker
from prefect_gcp.workers.cloud_run import CloudRunWorker
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

from gcpjobs.clients.target import EMULATOR_PROJECT
from gcpjobs.emulator.process import EmulatorProcess
from tests.integrations.prefect.test_workers import EXAMPLE_DIR, final_state, log_text

pytestmark = pytest.mark.timeout(240)

REGION = "us-central1"
WORKERS = [CloudRunWorker, CloudRunWorkerV2]


class _DialEmulator(httplib2.Http):
    """An httplib2 `Http` whose connections go to the emulator whatever the URL's host: the
    v1 worker's regional host, `REGION-127.0.0.1:PORT`, which no resolver knows. The request
    (its Host header included) is unchanged."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__()
        self._address = address

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None,
                redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
                connection_type: Any = None) -> Any:
        address = self._address

        class Connection(httplib2.HTTPConnectionWithTimeout):
            def connect(self) -> None:
                self.sock = socket.create_connection(address, timeout=self.timeout)

        return super().request(uri, method, body, headers, redirections, Connection)


def _point_at(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the workers' `_get_client` (see the module docstring); the bodies are
    prefect-gcp's, with the endpoint (and, for v1, the connection) changed."""
    address = (emulator.host, emulator.rest_port)

    def v1_client(self: CloudRunWorker, configuration: Any) -> discovery.Resource:
        options = ClientOptions(api_endpoint=f"http://{configuration.region}-{emulator.host}:"
                                             f"{emulator.rest_port}")
        return discovery.build("run", "v1", client_options=options,
                               http=_DialEmulator(address)).namespaces()

    def v2_client(configuration: Any) -> discovery.Resource:
        options = ClientOptions(api_endpoint=f"{emulator.rest_endpoint}/")
        return discovery.build("run", "v2", client_options=options,
                               credentials=AnonymousCredentials(),
                               num_retries=3).projects().locations()

    monkeypatch.setattr(CloudRunWorker, "_get_client", v1_client)
    monkeypatch.setattr(CloudRunWorkerV2, "_get_client", staticmethod(v2_client))


@pytest.fixture()
def prefect_gcp_env(prefect_server: str, emulator: EmulatorProcess,
                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    adc = tmp_path / "application_default_credentials.json"
    adc.write_text(json.dumps({
        "type": "authorized_user", "client_id": "emulator.apps.example",
        "client_secret": "unused", "refresh_token": "unused",
        "quota_project_id": EMULATOR_PROJECT}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", EMULATOR_PROJECT)  # what `gcloud config set project` gives
    _point_at(emulator, monkeypatch)
    return prefect_server


@pytest.fixture()
async def prefect() -> AsyncIterator[PrefectClient]:
    async with get_client() as client:
        yield client


def _count(requests: dict[str, Any], method: str) -> int:
    """Calls of `method` ("CreateJob") in the emulator's counters ("Jobs.CreateJob": n); v1
    calls are counted under their v2 methods."""
    return sum(int(count) for key, count in requests.items()
               if key.rsplit(".", 1)[-1] == method)


async def _run_hello(client: PrefectClient, worker_type: type[BaseWorker[Any, Any, Any]],
                     name: str) -> FlowRun:
    """A fresh pool of the worker's type (its default template), a deployment of `hello`,
    one flow run, and the worker, in this process, until the flow run has ended."""
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    await client.create_work_pool(WorkPoolCreate(
        name=pool, type=worker_type.type,
        base_job_template=worker_type.get_default_base_job_template()))
    flow_id = await client.create_flow_from_name("hello")
    deployment_id = await client.create_deployment(
        flow_id=flow_id, name=f"hello-{pool}", work_pool_name=pool,
        entrypoint="flows.py:hello", path=str(EXAMPLE_DIR),
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {
            "directory": str(EXAMPLE_DIR)}}],
        # The image is recorded only: the emulator runs the command on this host.
        job_variables={"image": "prefecthq/prefect:3-latest", "region": REGION},
    )
    flow_run = await client.create_flow_run_from_deployment(deployment_id,
                                                            parameters={"name": name})
    async with worker_type(work_pool_name=pool, create_pool_if_not_found=False) as worker:
        await worker.get_and_submit_flow_runs()
        return await final_state(client, flow_run.id)


@pytest.mark.parametrize("worker_type", WORKERS, ids=lambda w: w.type)
async def test_prefect_gcp_worker_runs_the_flow_as_one_job_and_deletes_it(
        worker_type: type[BaseWorker[Any, Any, Any]], prefect_gcp_env: str,
        prefect: PrefectClient, emulator: EmulatorProcess) -> None:
    before = emulator.stats()["requests"]
    run = await _run_hello(prefect, worker_type, worker_type.type)
    after = emulator.stats()["requests"]

    assert run.state is not None and run.state.type is StateType.COMPLETED, run.state
    assert await run.state.result() == f"hello {worker_type.type}"
    # Exactly one job was created and run once, and (no keep_job) deleted at the end.
    for method in ("CreateJob", "RunJob", "DeleteJob"):
        assert _count(after, method) - _count(before, method) == 1, method
    job_name = run.infrastructure_pid  # prefect-gcp reports the job's short name
    assert job_name
    jobs = run_v2.JobsClient(transport="rest", credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": emulator.rest_endpoint})
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=f"projects/{EMULATOR_PROJECT}/locations/{REGION}/jobs/{job_name}")
    # The flow ran inside the emulator's execution (CLOUD_RUN_EXECUTION is in its env).
    await log_text(prefect, run.id, f"hello {worker_type.type}, from job {job_name}-")
