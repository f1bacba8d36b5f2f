"""Shared fixtures: an emulator on free ports, and the OFFICIAL Vertex clients pointed at it.

`emulator` is one server for the whole session (tests tag their jobs with unique labels, so
they tolerate each other's jobs in list calls); `emulator_factory` starts private ones inside
this process for tests that hold states, inject faults or need an empty server, and
`emulator_process_factory` starts them as processes of their own for tests where the process
is the point (killed, restarted after a crash, signalled, its flags, environment, file modes
or threads). `job_client` runs a test once over gRPC and once over REST.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.job_service.transports import (
    JobServiceGrpcAsyncIOTransport,
    JobServiceGrpcTransport,
)

from gcpjobs.emulator.inprocess import InProcessEmulator
from gcpjobs.emulator.process import EmulatorProcess

TRANSPORTS = ("grpc", "rest")
Emulator = TypeVar("Emulator", InProcessEmulator, EmulatorProcess)


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every worker of the suite keeps gcpjobs' files (history, log cursors, the embedded
    emulator) in a directory of its own, not in the user's `~/.local/share/gcpjobs`: two
    suites side by side, or a suite beside the user's own embedded emulator, would otherwise
    share one emulator and one history. Its embedded emulator, if a test started one, is
    stopped at the end."""
    from gcpjobs.emulator.control import stop_detached

    home = tmp_path_factory.mktemp("xdg-data")
    saved = {name: os.environ.get(name) for name in ("XDG_DATA_HOME", "GCPJOBS_DATA_DIR")}
    os.environ["XDG_DATA_HOME"] = str(home)
    os.environ.pop("GCPJOBS_DATA_DIR", None)
    yield home
    stop_detached(home / "gcpjobs" / "emulator")
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("emulator"), cancel_grace_seconds=2.0) as server:
        yield server


@pytest.fixture()
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., InProcessEmulator]]:
    """`emulator_factory(data_dir=None, **settings)` starts a private emulator in this process
    (InProcessEmulator: the same server and sockets, without a second of interpreter start);
    all are stopped, and their jobs killed, at the end of the test."""
    yield from _private_emulators(InProcessEmulator, tmp_path)


@pytest.fixture()
def emulator_process_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    """`emulator_process_factory(data_dir=None, **settings)` starts a private emulator process
    (`python -m gcpjobs.emulator start`); all are stopped at the end of the test (SIGKILLed
    ones are simply reaped)."""
    yield from _private_emulators(EmulatorProcess, tmp_path)


def _private_emulators(kind: type[Emulator], tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(data_dir: Path | None = None, **settings: Any) -> Emulator:
        settings.setdefault("cancel_grace_seconds", 1.0)
        server = kind(data_dir or tmp_path / "emulator", **settings).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


def grpc_client(server: EmulatorProcess) -> aiplatform_v1.JobServiceClient:
    channel = grpc.insecure_channel(server.grpc_address)
    return aiplatform_v1.JobServiceClient(transport=JobServiceGrpcTransport(channel=channel))


def rest_client(server: EmulatorProcess) -> aiplatform_v1.JobServiceClient:
    return aiplatform_v1.JobServiceClient(
        client_options={"api_endpoint": server.rest_endpoint},
        transport="rest",
        credentials=AnonymousCredentials(),
    )


def client_for(server: EmulatorProcess, transport: str) -> aiplatform_v1.JobServiceClient:
    return grpc_client(server) if transport == "grpc" else rest_client(server)


@pytest.fixture(params=TRANSPORTS)
def job_client(request: pytest.FixtureRequest, emulator: EmulatorProcess) -> Iterator[aiplatform_v1.JobServiceClient]:
    """The official sync client, once over gRPC and once over REST."""
    client = client_for(emulator, request.param)
    yield client
    client.transport.close()


@pytest.fixture()
def grpc_job_client(emulator: EmulatorProcess) -> Iterator[aiplatform_v1.JobServiceClient]:
    client = grpc_client(emulator)
    yield client
    client.transport.close()


@pytest.fixture()
def rest_job_client(emulator: EmulatorProcess) -> Iterator[aiplatform_v1.JobServiceClient]:
    client = rest_client(emulator)
    yield client
    client.transport.close()


@pytest.fixture()
async def async_job_client(emulator: EmulatorProcess) -> AsyncIterator[aiplatform_v1.JobServiceAsyncClient]:
    channel = grpc.aio.insecure_channel(emulator.grpc_address)
    client = aiplatform_v1.JobServiceAsyncClient(
        transport=JobServiceGrpcAsyncIOTransport(channel=channel)
    )
    yield client
    await channel.close()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real, temporary Prefect server (Prefect's own test harness) for the whole session;
    yields its API URL. Prefect's settings point at it for the rest of the session, in this
    process; processes started from here get it through their environment (the workers put
    PREFECT_API_URL in each job's env)."""
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no network here
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        url = PREFECT_API_URL.value()
        assert url, "the Prefect test harness did not set PREFECT_API_URL"
        yield str(url)
