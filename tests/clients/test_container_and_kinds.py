"""`container(name)` (what a job runs, read back from the service) on both clients and both
transports, and the kind helpers the CLI and remote steps share."""

from __future__ import annotations

import sys

import pytest

from gcpjobs.clients.cloudrun import AsyncCloudRunClient
from gcpjobs.clients.kinds import client_for_kind, kind_of_name
from gcpjobs.clients.vertex import AsyncVertexClient, Transport
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import GcpJobsError, JobNotFoundError
from gcpjobs.specs.cloudrun import CloudRunJob, SecretRef
from gcpjobs.specs.vertex import VertexJob
from tests.clients.conftest import target_for, unique_label


async def test_vertex_container_is_what_the_job_runs(emulator: EmulatorProcess,
                                                     transport: Transport) -> None:
    job = VertexJob(name="container", image="python:3.11",
                    command=[sys.executable, "-c", "pass"], args=["--epochs", "3"],
                    env={"MODE": "fast", "EMPTY": ""}, labels={"suite": unique_label()})
    async with AsyncVertexClient(target=target_for(emulator), transport=transport) as client:
        result = await client.run(job)
        container = await client.container(result.name)
    assert container.image == "python:3.11"
    assert container.command == (sys.executable, "-c", "pass")
    assert container.args == ("--epochs", "3")
    assert dict(container.env) == {"MODE": "fast", "EMPTY": ""}


async def test_cloud_run_container_has_plain_env_only(emulator: EmulatorProcess,
                                                      transport: Transport) -> None:
    secret = f"container-{unique_label()}"
    emulator.add_secret(secret, "s3cr3t-value")
    job = CloudRunJob(name="container", image="python:3.11", keep_job=True,
                      command=[sys.executable, "-c", "pass"], args=["a"],
                      env={"MODE": "fast", "TOKEN": SecretRef(secret=secret, version="latest")},
                      labels={"suite": unique_label()})
    async with AsyncCloudRunClient(target=target_for(emulator), transport=transport) as client:
        result = await client.run(job)
        container = await client.container(result.name)
    assert result.succeeded
    assert container.command == (sys.executable, "-c", "pass") and container.args == ("a",)
    assert dict(container.env) == {"MODE": "fast"}  # the secret is a reference, not a value
    assert "s3cr3t-value" not in repr(container)


@pytest.mark.parametrize("kind", ["vertex", "cloud-run"])
async def test_container_of_an_unknown_job_is_not_found(emulator: EmulatorProcess,
                                                        kind: str) -> None:
    missing = ("projects/gcpjobs-local/locations/us-central1/customJobs/987654321"
               if kind == "vertex" else
               "projects/gcpjobs-local/locations/us-central1/jobs/none/executions/none-x1y2z")
    async with client_for_kind(kind, target=target_for(emulator)) as client:
        with pytest.raises(JobNotFoundError):
            await client.container(missing)


def test_client_for_kind_makes_the_kinds_client() -> None:
    assert isinstance(client_for_kind("vertex", project="p"), AsyncVertexClient)
    assert isinstance(client_for_kind("cloud-run", project="p"), AsyncCloudRunClient)


@pytest.mark.parametrize("kind", ["Vertex", "cloudrun", "", "gke"])
def test_client_for_an_unknown_kind_is_one_line(kind: str) -> None:
    with pytest.raises(GcpJobsError, match=r"^unknown kind .*; use one of: vertex, cloud-run$"):
        client_for_kind(kind)


@pytest.mark.parametrize(("name", "kind"), [
    ("projects/p/locations/l/customJobs/123", "vertex"),
    ("projects/p/locations/l/customJobs", "vertex"),  # malformed, but plainly Vertex
    ("123", "vertex"),
    (" 456 ", "vertex"),
    ("projects/p/locations/l/jobs/j/executions/j-abcde", "cloud-run"),
    ("j-abcde", None),
    ("my training job", None),
])
def test_kind_of_name(name: str, kind: str | None) -> None:
    assert kind_of_name(name) == kind
