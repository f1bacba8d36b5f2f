"""`credentials=`: a caller's own Credentials object is what the GAPIC transports get on GCP
(nothing is loaded, nothing is sent: the clients are only built), and an emulator never
needs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import Credentials

import gcpjobs.clients.connection as connection
from gcpjobs.clients.cloudrun import AsyncCloudRunClient, CloudRunClient
from gcpjobs.clients.target import Target
from gcpjobs.clients.vertex import AsyncVertexClient, Transport, VertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import GcpJobsError
from tests.clients.conftest import PARENT, target_for

GCP = Target(kind="gcp", project="cred-project")


class FakeCredentials(Credentials):  # type: ignore[misc]
    """Credentials that count every use; they can never reach Google (no token is real)."""

    def __init__(self, project_id: str | None = None) -> None:
        super().__init__()
        self.token = "fake-token"
        self.refreshes = 0
        self.applied = 0
        if project_id is not None:
            self.project_id = project_id

    def refresh(self, request: Any) -> None:
        self.refreshes += 1

    def apply(self, headers: dict[str, str], token: str | None = None) -> None:
        self.applied += 1
        super().apply(headers, token)


@pytest.fixture(autouse=True)
def no_credential_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a key file or ADC would mean the given object was ignored."""

    def refuse(credentials_file: str | None) -> Any:
        raise AssertionError("credentials were loaded although an object was given")

    monkeypatch.setattr(connection, "load_credentials", refuse)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_vertex_transports_get_the_given_object(transport: Transport) -> None:
    credentials = FakeCredentials()
    async with AsyncVertexClient(target=GCP, transport=transport, credentials=credentials) as client:
        gapic = (await client._api("us-central1"))._client  # type: ignore[attr-defined]
        assert gapic.transport._credentials is credentials


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_cloud_run_transports_get_the_given_object(transport: Transport) -> None:
    credentials = FakeCredentials()
    async with AsyncCloudRunClient(target=GCP, transport=transport, credentials=credentials) as client:
        api = await client._api()
        assert api._jobs.transport._credentials is credentials  # type: ignore[attr-defined]
        assert api._executions.transport._credentials is credentials  # type: ignore[attr-defined]


def test_sync_facades_hand_the_object_on() -> None:
    credentials = FakeCredentials()
    with VertexClient(target=GCP, credentials=credentials) as vertex, \
            CloudRunClient(target=GCP, credentials=credentials) as run:
        assert vertex.async_client.credentials is credentials
        assert run.async_client.credentials is credentials


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_an_emulator_never_uses_them(emulator: EmulatorProcess, transport: Transport) -> None:
    credentials = FakeCredentials()
    async with AsyncVertexClient(target=target_for(emulator), transport=transport,
                                 credentials=credentials) as client:
        assert await client.statuses([f"{PARENT}/customJobs/424242424242"]) == {}
        gapic = (await client._api("us-central1"))._client  # type: ignore[attr-defined]
        assert gapic.transport._credentials is not credentials
    assert (credentials.refreshes, credentials.applied) == (0, 0)


@pytest.fixture()
def nothing_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("GCPJOBS_EMULATOR_HOST", "GCPJOBS_EMULATOR_REST_HOST", "GOOGLE_CLOUD_PROJECT",
                 "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
                 "CLOUDSDK_ACTIVE_CONFIG_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCPJOBS_DATA_DIR", str(tmp_path / "data"))
    yield
    assert not (tmp_path / "data").exists()  # no embedded emulator was started


def test_credentials_mean_gcp_in_their_own_project(nothing_configured: None) -> None:
    assert AsyncVertexClient(credentials=FakeCredentials("sa-project")).target == Target(
        kind="gcp", project="sa-project"
    )
    assert AsyncCloudRunClient(project="mine", credentials=FakeCredentials("sa-project")).target == (
        Target(kind="gcp", project="mine")
    )


def test_credentials_without_a_project_never_fall_back_to_the_emulator(
    nothing_configured: None,
) -> None:
    with pytest.raises(GcpJobsError, match="no Google Cloud project"):
        _ = AsyncVertexClient(credentials=FakeCredentials()).target


def test_an_emulator_host_wins_over_given_credentials(
    nothing_configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCPJOBS_EMULATOR_HOST", "127.0.0.1:9")
    target = AsyncVertexClient(credentials=FakeCredentials("sa-project")).target
    assert target.is_emulator and target.project == "gcpjobs-local"
