"""Fixtures for the client tests: our clients pointed at the session emulator (both
transports), jobs that run this Python, and the OFFICIAL client to check what we did."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport

from gcpjobs.clients.target import EMULATOR_PROJECT, Target
from gcpjobs.clients.vertex import AsyncVertexClient, Transport, VertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.specs.vertex import VertexJob

PARENT = f"projects/{EMULATOR_PROJECT}/locations/us-central1"


def target_for(server: EmulatorProcess) -> Target:
    return Target(
        kind="emulator",
        project=EMULATOR_PROJECT,
        grpc_address=server.grpc_address,
        rest_endpoint=server.rest_endpoint,
    )


def python_job(code: str, *, name: str = "client-test", labels: dict[str, str] | None = None) -> VertexJob:
    """A job whose replica runs `code` with this interpreter (the emulator runs host processes)."""
    return VertexJob(name=name, image="python:3.11", command=[sys.executable, "-c", code],
                     labels=labels or {})


def unique_label() -> str:
    return uuid.uuid4().hex[:16]


def official_client(server: EmulatorProcess, transport: Transport = "grpc") -> aiplatform_v1.JobServiceClient:
    if transport == "rest":
        return aiplatform_v1.JobServiceClient(
            transport="rest", client_options={"api_endpoint": server.rest_endpoint},
            credentials=AnonymousCredentials(),
        )
    channel = grpc.insecure_channel(server.grpc_address)
    return aiplatform_v1.JobServiceClient(transport=JobServiceGrpcTransport(channel=channel))


def request_counts(server: EmulatorProcess) -> dict[str, Any]:
    counts: dict[str, Any] = server.stats()["requests"]
    return counts


@pytest.fixture(params=["grpc", "rest"])
def transport(request: pytest.FixtureRequest) -> Transport:
    value: Transport = request.param
    return value


@pytest.fixture()
async def client(emulator: EmulatorProcess, transport: Transport) -> AsyncIterator[AsyncVertexClient]:
    async with AsyncVertexClient(target=target_for(emulator), transport=transport) as vertex:
        yield vertex


@pytest.fixture()
def sync_client(emulator: EmulatorProcess, transport: Transport) -> Iterator[VertexClient]:
    with VertexClient(target=target_for(emulator), transport=transport) as vertex:
        yield vertex


@pytest.fixture()
def checker(emulator: EmulatorProcess) -> Iterator[aiplatform_v1.JobServiceClient]:
    """The official sync gRPC client, to check our client's work independently."""
    official = official_client(emulator)
    yield official
    official.transport.close()
