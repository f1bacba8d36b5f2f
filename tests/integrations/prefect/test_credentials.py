"""The gcpjobs Credentials block: a key file, a stored key, or neither (Application Default
Credentials); one-line errors that never show key material."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account
from pydantic import ValidationError

from gcpjobs.integrations.prefect.credentials import (
    CLOUD_PLATFORM_SCOPE,
    CredentialsError,
    GcpJobsCredentials,
)

KEY_MARKER = "PRIVATE KEY"


@pytest.fixture(scope="module")
def key_info() -> dict[str, Any]:
    """A service-account key as `gcloud iam service-accounts keys create` writes it (with a
    freshly made private key, valid for nothing)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    return {
        "type": "service_account",
        "project_id": "key-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "runner@key-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


@pytest.fixture()
def key_file(tmp_path: Path, key_info: dict[str, Any]) -> Path:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key_info), encoding="utf-8")
    return path


def assert_one_line_without_key(text: str, key_info: dict[str, Any]) -> None:
    assert "\n" not in text
    assert KEY_MARKER not in text
    body = key_info["private_key"].splitlines()[1]
    assert body not in text


def test_key_file_gives_service_account_credentials(key_file: Path) -> None:
    block = GcpJobsCredentials(service_account_file=key_file)
    credentials = block.get_credentials()
    assert isinstance(credentials, service_account.Credentials)
    assert credentials.service_account_email == "runner@key-project.iam.gserviceaccount.com"
    assert credentials.scopes == [CLOUD_PLATFORM_SCOPE]
    assert block.project_id() == "key-project"


def test_stored_key_gives_service_account_credentials(key_info: dict[str, Any]) -> None:
    block = GcpJobsCredentials(service_account_info=key_info, project="other-project")
    credentials = block.get_credentials()
    assert isinstance(credentials, service_account.Credentials)
    assert credentials.service_account_email == key_info["client_email"]
    assert block.project_id() == "other-project"  # the block's project wins over the key's


def test_the_same_key_gives_the_same_credentials_object(key_info: dict[str, Any],
                                                        key_file: Path) -> None:
    """A worker resolves the block afresh for each flow run; one object lets it keep one
    client for all of them."""
    first = GcpJobsCredentials(service_account_info=key_info).get_credentials()
    again = GcpJobsCredentials(service_account_info=dict(key_info)).get_credentials()
    from_file = GcpJobsCredentials(service_account_file=key_file).get_credentials()
    assert first is again is from_file


def test_neither_means_application_default_credentials() -> None:
    block = GcpJobsCredentials()
    assert block.get_credentials() is None
    assert block.project_id() is None
    assert GcpJobsCredentials(project="my-project").project_id() == "my-project"


def test_home_directory_in_the_path_is_expanded() -> None:
    block = GcpJobsCredentials(service_account_file=Path("~/keys/sa.json"))
    assert block.service_account_file == Path.home() / "keys" / "sa.json"


def test_both_sources_are_refused() -> None:
    with pytest.raises(ValidationError, match="not both"):
        GcpJobsCredentials(service_account_file=Path("/k.json"),
                           service_account_info={"type": "service_account"})


def test_missing_key_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    block = GcpJobsCredentials(service_account_file=missing)
    with pytest.raises(CredentialsError) as caught:
        block.get_credentials()
    text = str(caught.value)
    assert "\n" not in text and str(missing) in text and "No such file" in text
    assert block.project_id() is None  # never raises


def test_key_file_that_is_not_json_does_not_echo_it(tmp_path: Path,
                                                    key_info: dict[str, Any]) -> None:
    path = tmp_path / "broken.json"
    path.write_text(key_info["private_key"] + "{", encoding="utf-8")
    with pytest.raises(CredentialsError) as caught:
        GcpJobsCredentials(service_account_file=path).get_credentials()
    assert "not valid JSON" in str(caught.value)
    assert_one_line_without_key(str(caught.value), key_info)


def test_json_that_is_not_a_key_names_what_is_missing(tmp_path: Path,
                                                      key_info: dict[str, Any]) -> None:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "x",
                                "refresh_token": "secret-token"}), encoding="utf-8")
    with pytest.raises(CredentialsError) as caught:
        GcpJobsCredentials(service_account_file=path).get_credentials()
    text = str(caught.value)
    assert "not a service-account key" in text and "secret-token" not in text
    partial = {k: v for k, v in key_info.items() if k != "client_email"}
    with pytest.raises(CredentialsError, match="lacks client_email") as caught:
        GcpJobsCredentials(service_account_info=partial).get_credentials()
    assert_one_line_without_key(str(caught.value), key_info)


def test_stored_key_with_a_broken_private_key_does_not_echo_it(
        key_info: dict[str, Any]) -> None:
    lines = key_info["private_key"].splitlines()
    broken = {**key_info, "private_key": "\n".join([lines[0], lines[1][::-1], *lines[2:]])}
    with pytest.raises(CredentialsError) as caught:
        GcpJobsCredentials(service_account_info=broken).get_credentials()
    text = str(caught.value)
    assert "service_account_info: the private key cannot be loaded" in text
    assert_one_line_without_key(text, key_info)
    assert lines[1][::-1] not in text


def test_repr_str_and_dump_never_show_the_key(key_info: dict[str, Any]) -> None:
    block = GcpJobsCredentials(service_account_info=key_info)
    for text in (repr(block), str(block), str(block.model_dump()),
                 block.model_dump_json()):
        assert KEY_MARKER not in text
        assert key_info["client_email"] not in text  # the whole info is one secret
    assert block.service_account_info is not None
    assert block.service_account_info.get_secret_value()["private_key"] == \
        key_info["private_key"]
