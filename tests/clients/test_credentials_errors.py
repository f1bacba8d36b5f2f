"""A credentials file that exists but is no credentials file: one line that names the setting,
the path and what is wrong, and how to fix it; never the file's content (it may be a key).

Two ways a file is given: `GOOGLE_APPLICATION_CREDENTIALS` (read by Application Default
Credentials) and a client's `credentials_file`. Unit tests of `load_credentials`, no network;
one through the `gcpjobs` command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import google.auth
import pytest
from google.auth import exceptions as auth_exceptions
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from gcpjobs.clients.connection import load_credentials
from gcpjobs.errors import GcpJobsError
from tests.cli.support import assert_one_line_error, clean_env, gcpjobs
from tests.clients.test_embedded_and_gcp import service_account_key

ENV = "GOOGLE_APPLICATION_CREDENTIALS"
# What a leaked key would look like in a message: every bad file below holds it.
SECRET = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-fake-private-key-do-not-print"
PEM = f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"

# name -> (the file's bytes, what the message must say is wrong)
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "pem, not json": (PEM.encode(), "is not JSON"),
    "binary": (b"\xff\xfe\x00" + SECRET.encode(), "is not JSON"),
    "json with a syntax error": (b'{"private_key": "' + SECRET.encode() + b'",}', "is not JSON"),
    "empty": (b"  \n", "is empty"),
    "json list": (json.dumps([SECRET]).encode(), "is JSON but not a credentials file"),
    "json string": (json.dumps(SECRET).encode(), "is JSON but not a credentials file"),
    "no type": (json.dumps({"private_key": PEM}).encode(),
                'is JSON but not a credentials file (it has no "type" field)'),
    "unknown type": (json.dumps({"type": SECRET, "private_key": PEM}).encode(),
                     'is JSON but not a credentials file (its "type" is none that'),
    "service account, fields missing": (
        json.dumps({"type": "service_account", "private_key": PEM}).encode(),
        "is a service-account key file without the field(s) client_email, token_uri",
    ),
    "service account, bad key": (
        json.dumps({"type": "service_account", "private_key": PEM,
                    "client_email": "a@p.iam.gserviceaccount.com",
                    "token_uri": "https://oauth2.googleapis.com/token"}).encode(),
        "is a service-account key file that google-auth cannot load",
    ),
}


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "key.json"
    path.write_bytes(content)
    return path


def assert_clear(message: str, *fragments: str) -> None:
    assert "\n" not in message and "\r" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert SECRET not in message and "BEGIN PRIVATE KEY" not in message, message
    assert "no Google Cloud credentials found" not in message  # the misleading old answer


@pytest.fixture(autouse=True)
def _no_outside_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing of this machine's gcloud setup takes part."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_in_the_environment_variable(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content, problem = BAD_FILES[name]
    path = write(tmp_path, content)
    monkeypatch.setenv(ENV, str(path))
    with pytest.raises(GcpJobsError) as caught:
        load_credentials(None)
    assert_clear(str(caught.value), f"{ENV} is set to {path}, which {problem}",
                 "gcloud auth application-default login", "service-account key file")
    assert caught.value.__cause__ is None  # no chained library error carrying the content


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_credentials_file(name: str, tmp_path: Path) -> None:
    content, problem = BAD_FILES[name]
    path = write(tmp_path, content)
    with pytest.raises(GcpJobsError) as caught:
        load_credentials(str(path))
    assert_clear(str(caught.value), f"credentials_file {path} {problem}",
                 "gcloud iam service-accounts keys create")
    assert caught.value.__cause__ is None


def test_a_missing_file_or_a_directory_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "absent.json"
    monkeypatch.setenv(ENV, str(absent))
    with pytest.raises(GcpJobsError) as missing:
        load_credentials(None)
    assert_clear(str(missing.value), f"{ENV} is set to {absent}, which does not exist")

    monkeypatch.setenv(ENV, str(tmp_path))
    with pytest.raises(GcpJobsError) as directory:
        load_credentials(None)
    assert_clear(str(directory.value), f"{ENV} is set to {tmp_path}, which is a directory")

    monkeypatch.delenv(ENV)
    with pytest.raises(GcpJobsError) as missing_file:
        load_credentials(str(absent))
    assert_clear(str(missing_file.value), f"credentials_file {absent} does not exist")


def test_user_credentials_are_fine_for_adc_but_not_as_a_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, json.dumps({
        "type": "authorized_user", "client_id": "id", "client_secret": SECRET,
        "refresh_token": "token",
    }).encode())
    with pytest.raises(GcpJobsError) as caught:
        load_credentials(str(path))
    assert_clear(str(caught.value), f"credentials_file {path}",
                 'type "authorized_user", not a service-account key file')

    monkeypatch.setenv(ENV, str(path))
    assert isinstance(load_credentials(None), user_credentials.Credentials)


def test_good_key_files_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = service_account_key(tmp_path / "key.json")
    loaded = load_credentials(str(path))
    assert isinstance(loaded, service_account.Credentials)
    assert loaded.service_account_email == "runner@key-project.iam.gserviceaccount.com"
    monkeypatch.setenv(ENV, str(path))
    assert isinstance(load_credentials(None), service_account.Credentials)


def test_no_credentials_at_all_still_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_adc(*args: Any, **kwargs: Any) -> Any:
        raise auth_exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_adc)  # no metadata-server probe here
    with pytest.raises(GcpJobsError, match="no Google Cloud credentials found") as caught:
        load_credentials(None)
    assert "\n" not in str(caught.value) and ENV in str(caught.value)


def test_the_cli_shows_one_line_without_the_content(tmp_path: Path) -> None:
    path = write(tmp_path, PEM.encode())
    # A project, so gcpjobs targets Google Cloud (not an emulator) and loads credentials; they
    # fail before any request is sent.
    env = clean_env(GOOGLE_CLOUD_PROJECT="my-project", **{ENV: str(path)},
                    CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), HOME=str(tmp_path))
    result = gcpjobs("status", "1234567890", env=env)
    assert result.returncode != 0
    assert_one_line_error(result, f"{ENV} is set to {path}, which is not JSON")
    assert SECRET not in result.stderr + result.stdout
    assert "BEGIN PRIVATE KEY" not in result.stderr + result.stdout
