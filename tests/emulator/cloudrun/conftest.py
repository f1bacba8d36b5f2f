"""`run`: the official Cloud Run v2 clients against the session emulator, once per transport."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import TRANSPORTS
from tests.emulator.cloudrun.support import RunClients, run_clients


@pytest.fixture(params=TRANSPORTS)
def run(request: pytest.FixtureRequest, emulator: EmulatorProcess) -> Iterator[RunClients]:
    clients = run_clients(emulator, request.param)
    yield clients
    clients.close()


@pytest.fixture()
def grpc_run(emulator: EmulatorProcess) -> Iterator[RunClients]:
    clients = run_clients(emulator, "grpc")
    yield clients
    clients.close()
