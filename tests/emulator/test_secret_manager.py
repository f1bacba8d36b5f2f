"""The emulator serves Secret Manager (google.cloud.secretmanager.v1.SecretManagerService) over
the local secret store, through the official client over gRPC and REST."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable, Iterator

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import TRANSPORTS

PROJECT = "secret-project"


def secret_client(server: EmulatorProcess, transport: str) -> secretmanager_v1.SecretManagerServiceClient:
    if transport == "grpc":
        channel = grpc.insecure_channel(server.grpc_address)
        return secretmanager_v1.SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=channel))
    return secretmanager_v1.SecretManagerServiceClient(
        client_options={"api_endpoint": server.rest_endpoint}, transport="rest",
        credentials=AnonymousCredentials())


@pytest.fixture(params=TRANSPORTS)
def secrets(request: pytest.FixtureRequest,
            emulator: EmulatorProcess) -> Iterator[secretmanager_v1.SecretManagerServiceClient]:
    client = secret_client(emulator, request.param)
    yield client
    client.transport.close()


def new_id() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def create(client: secretmanager_v1.SecretManagerServiceClient, secret_id: str,
           project: str = PROJECT, **labels: str) -> secretmanager_v1.Secret:
    return client.create_secret(request={
        "parent": f"projects/{project}", "secret_id": secret_id,
        "secret": {"replication": {"automatic": {}}, "labels": labels}})


def test_create_add_access_get_delete(secrets: secretmanager_v1.SecretManagerServiceClient) -> None:
    secret_id = new_id()
    name = f"projects/{PROJECT}/secrets/{secret_id}"
    created = create(secrets, secret_id, purpose="test")
    assert created.name == name
    assert dict(created.labels) == {"purpose": "test"}
    assert created.create_time.timestamp() > 0

    data = b"\x00binary\xffkey"
    first = secrets.add_secret_version(request={"parent": name, "payload": {
        "data": data, "data_crc32c": google_crc32c.value(data)}})
    assert first.name == f"{name}/versions/1"
    assert first.state == secretmanager_v1.SecretVersion.State.ENABLED
    second = secrets.add_secret_version(request={"parent": name, "payload": {"data": b"two"}})
    assert second.name == f"{name}/versions/2"

    latest = secrets.access_secret_version(name=f"{name}/versions/latest")
    assert latest.name == f"{name}/versions/2"
    assert latest.payload.data == b"two"
    assert latest.payload.data_crc32c == google_crc32c.value(b"two")
    assert secrets.access_secret_version(name=first.name).payload.data == data

    assert secrets.get_secret(name=name).name == name
    listed = [secret.name for secret in secrets.list_secrets(parent=f"projects/{PROJECT}")]
    assert name in listed

    secrets.delete_secret(name=name)
    with pytest.raises(exceptions.NotFound, match=rf"Secret \[{name}\] not found\."):
        secrets.get_secret(name=name)
    with pytest.raises(exceptions.NotFound, match="not found or has no versions"):
        secrets.access_secret_version(name=f"{name}/versions/latest")
    assert name not in [s.name for s in secrets.list_secrets(parent=f"projects/{PROJECT}")]


def test_errors_are_the_real_codes(secrets: secretmanager_v1.SecretManagerServiceClient) -> None:
    secret_id = new_id()
    name = f"projects/{PROJECT}/secrets/{secret_id}"
    create(secrets, secret_id)
    with pytest.raises(exceptions.Conflict, match=rf"Secret \[{name}\] already exists\."):
        create(secrets, secret_id)
    for bad_id in ("has space", "a/b", "..", "x" * 256, "dots.not.allowed"):
        with pytest.raises(exceptions.BadRequest):
            create(secrets, bad_id)
    with pytest.raises(exceptions.BadRequest):
        create(secrets, new_id(), **{"Upper": "x"})
    with pytest.raises(exceptions.NotFound, match="not found or has no versions"):
        secrets.access_secret_version(name=f"{name}/versions/latest")  # no versions yet
    secrets.add_secret_version(request={"parent": name, "payload": {"data": b"v1"}})
    with pytest.raises(exceptions.NotFound,
                       match=rf"Secret Version \[{name}/versions/7\] not found\."):
        secrets.access_secret_version(name=f"{name}/versions/7")
    with pytest.raises(exceptions.BadRequest):
        secrets.access_secret_version(name=f"{name}/versions/0")
    with pytest.raises(exceptions.NotFound):
        secrets.add_secret_version(request={"parent": f"projects/{PROJECT}/secrets/{new_id()}",
                                            "payload": {"data": b"x"}})
    with pytest.raises(exceptions.NotFound):
        secrets.delete_secret(name=f"projects/{PROJECT}/secrets/{new_id()}")
    # A secret belongs to the project it was created in.
    with pytest.raises(exceptions.NotFound):
        secrets.get_secret(name=f"projects/other-project/secrets/{secret_id}")
    # Projects are checked as every other service checks them (names.check_project_id).
    for project in ("Upper-Case", "ends-with-", "a.b"):
        with pytest.raises(exceptions.BadRequest, match="Invalid project resource name"):
            secrets.get_secret(name=f"projects/{project}/secrets/{secret_id}")
        with pytest.raises(exceptions.BadRequest, match="Invalid project resource name"):
            secrets.list_secrets(parent=f"projects/{project}")


def test_a_corrupted_payload_is_refused(secrets: secretmanager_v1.SecretManagerServiceClient) -> None:
    secret_id = new_id()
    name = f"projects/{PROJECT}/secrets/{secret_id}"
    create(secrets, secret_id)
    with pytest.raises(exceptions.BadRequest, match="Checksum mismatch"):
        secrets.add_secret_version(request={"parent": name, "payload": {
            "data": b"payload", "data_crc32c": google_crc32c.value(b"other")}})
    with pytest.raises(exceptions.BadRequest, match="limit is 65536 bytes"):
        secrets.add_secret_version(request={"parent": name, "payload": {"data": b"x" * 65537}})
    with pytest.raises(exceptions.NotFound):  # nothing was stored
        secrets.access_secret_version(name=f"{name}/versions/latest")


def test_listing_pages(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    # A private emulator: secrets added through files or the admin route (other tests do) are
    # listed in every project, and would be counted here.
    client = secret_client(emulator_factory(), "grpc")
    project = f"list-{uuid.uuid4().hex[:8]}"
    names = {create(client, new_id(), project=project).name for _ in range(5)}
    pages = client.list_secrets(request={"parent": f"projects/{project}", "page_size": 2}).pages
    seen = [[secret.name for secret in page.secrets] for page in pages]
    assert [len(page) for page in seen] == [2, 2, 1]
    assert {name for page in seen for name in page} == names


def test_values_are_private_files_and_serve_cloud_run_too(emulator: EmulatorProcess) -> None:
    client = secret_client(emulator, "grpc")
    secret_id = new_id()
    name = create(client, secret_id).name
    client.add_secret_version(request={"parent": name, "payload": {"data": b"shared"}})
    directory = emulator.data_dir / "secrets" / secret_id
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (directory / "1").read_bytes() == b"shared"
    # The admin route adds to the same store (what Cloud Run's secret_key_ref reads).
    assert emulator.add_secret(secret_id, "via admin") == "2"
    assert client.access_secret_version(name=f"{name}/versions/latest").payload.data == b"via admin"
