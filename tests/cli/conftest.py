"""Fixtures for the CLI tests: one emulator for the module's `gcpjobs` calls."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.cloud.aiplatform_v1.services.job_service import JobServiceClient
from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport

from gcpjobs.emulator.process import EmulatorProcess
from tests.cli.support import clean_env


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("cli-emulator")) as running:
        yield running


@pytest.fixture(scope="module")
def jobs(emulator: EmulatorProcess) -> JobServiceClient:
    channel = grpc.insecure_channel(emulator.grpc_address)
    return JobServiceClient(transport=JobServiceGrpcTransport(channel=channel))


@pytest.fixture()
def env(emulator: EmulatorProcess) -> dict[str, str]:
    return clean_env(GCPJOBS_EMULATOR_HOST=emulator.grpc_address)
