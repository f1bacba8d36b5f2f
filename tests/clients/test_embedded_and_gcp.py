"""The embedded emulator (no project configured) and the GCP wiring (no network needed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcpjobs.clients.connection import load_credentials
from gcpjobs.clients.target import Target, resolve_target
from gcpjobs.clients.vertex import AsyncVertexClient, Transport, VertexClient
from gcpjobs.emulator.config import default_data_dir
from gcpjobs.emulator.control import running_emulator, stop_detached
from gcpjobs.errors import GcpJobsError
from gcpjobs.states import JobState
from tests.clients.conftest import python_job

NO_PROJECT_ENVIRONMENT = (
    "GCPJOBS_EMULATOR_HOST", "GCPJOBS_EMULATOR_REST_HOST", "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_ACTIVE_CONFIG_NAME",
)


@pytest.fixture()
def no_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Nothing configured; a private data dir. Stops whatever emulator the test started."""
    for name in NO_PROJECT_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "gcloud").mkdir()
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCPJOBS_DATA_DIR", str(tmp_path / "data"))
    data_dir = default_data_dir()
    yield data_dir
    stop_detached(data_dir)


def test_embedded_emulator_is_started_once_and_reused(no_project: Path) -> None:
    first = resolve_target()
    assert first.kind == "emulator" and first.embedded and first.project == "gcpjobs-local"
    running = running_emulator(no_project)
    assert running is not None and running.grpc_address == first.grpc_address
    second = resolve_target()
    assert second == first
    again = running_emulator(no_project)
    assert again is not None and again.pid == running.pid  # the same process, not a new one

    # A client with no settings at all lands on it.
    with VertexClient() as client:
        assert client.run(python_job("pass")).state is JobState.SUCCEEDED
        assert client.target == first

    assert stop_detached(no_project)
    assert running_emulator(no_project) is None


# ------------------------------------------------------------------------------------ gcp


def service_account_key(path: Path) -> Path:
    """A syntactically real key file (fresh RSA key), so credentials load offline."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "key-project", "private_key_id": "1",
        "private_key": pem, "client_email": "runner@key-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


@pytest.mark.parametrize(
    ("transport", "host"),
    [("grpc", "europe-west4-aiplatform.googleapis.com:443"),
     ("rest", "https://europe-west4-aiplatform.googleapis.com")],
)
async def test_gcp_clients_use_the_regional_endpoint_and_the_key_file(
    tmp_path: Path, transport: Transport, host: str
) -> None:
    key = service_account_key(tmp_path / "key.json")
    target = Target(kind="gcp", project="key-project", credentials_file=str(key))
    async with AsyncVertexClient(target=target, transport=transport, region="europe-west4") as client:
        api = await client._api("europe-west4")
        gapic = api._client  # type: ignore[attr-defined]
        assert gapic.transport._host == host
        assert gapic.transport._credentials.service_account_email == (
            "runner@key-project.iam.gserviceaccount.com"
        )
        assert await client._api("europe-west4") is api  # one GAPIC client per region
        assert await client._api("us-east1") is not api
    assert client.retry_policy.initial == 1.0 and client.poll_schedule().fast == 2.0


def test_unreadable_key_files_are_one_line_errors_without_their_content(tmp_path: Path) -> None:
    with pytest.raises(GcpJobsError) as missing:
        load_credentials(str(tmp_path / "absent.json"))
    assert "absent.json" in str(missing.value) and "\n" not in str(missing.value)

    wrong = tmp_path / "user.json"
    wrong.write_text(json.dumps({"type": "authorized_user", "client_secret": "hunter2-secret"}))
    with pytest.raises(GcpJobsError) as caught:
        load_credentials(str(wrong))
    message = str(caught.value)
    assert "not a service-account key" in message and "hunter2" not in message
    assert "\n" not in message
