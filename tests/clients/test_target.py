"""resolve_target(): environment variables, gcloud's files, bad emulator hosts (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gcpjobs.clients.target import (
    EMULATOR_PROJECT,
    Target,
    configured_project,
    parse_host_port,
    resolve_target,
)
from gcpjobs.errors import GcpJobsError

ENVIRONMENT = (
    "GCPJOBS_EMULATOR_HOST",
    "GCPJOBS_EMULATOR_REST_HOST",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_ACTIVE_CONFIG_NAME",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No project anywhere: an empty gcloud config dir, no variables."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "gcloud"
    config.mkdir()
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(config))
    return config


def write_gcloud_config(config: Path, name: str, project: str, *, active: bool = True) -> None:
    (config / "configurations").mkdir(exist_ok=True)
    (config / "configurations" / f"config_{name}").write_text(
        f"[core]\naccount = someone@example.com\nproject = {project}\n", encoding="utf-8"
    )
    if active:
        (config / "active_config").write_text(name, encoding="utf-8")


# ------------------------------------------------------------------------------ emulator


def test_emulator_host_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCPJOBS_EMULATOR_HOST", "127.0.0.1:9000")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "real-project")  # the emulator still wins
    target = resolve_target()
    assert target == Target(
        kind="emulator", project=EMULATOR_PROJECT, grpc_address="127.0.0.1:9000",
        rest_endpoint="http://127.0.0.1:9001",
    )
    assert target.api_endpoint("europe-west4") == "127.0.0.1:9000"


def test_emulator_rest_host_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCPJOBS_EMULATOR_HOST", "localhost:9000")
    monkeypatch.setenv("GCPJOBS_EMULATOR_REST_HOST", "localhost:9555")
    target = resolve_target(project="mine")
    assert (target.project, target.rest_endpoint) == ("mine", "http://localhost:9555")


def test_emulator_host_argument_ignores_the_other_emulators_rest_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GCPJOBS_EMULATOR_HOST", "127.0.0.1:9000")
    monkeypatch.setenv("GCPJOBS_EMULATOR_REST_HOST", "127.0.0.1:9555")
    target = resolve_target(emulator_host="[::1]:7000")
    assert target.grpc_address == "[::1]:7000"
    assert target.rest_endpoint == "http://[::1]:7001"


@pytest.mark.parametrize(
    ("value", "problem"),
    [("localhost", "has no port"), ("127.0.0.1:", "has no port"), (":8470", "has no port"),
     ("127.0.0.1:http", "not a number"), ("127.0.0.1:70000", "not a number"),
     ("[::1]", "has no port")],
)
def test_bad_emulator_hosts_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("GCPJOBS_EMULATOR_HOST", value)
    with pytest.raises(GcpJobsError) as caught:
        resolve_target()
    message = str(caught.value)
    assert problem in message and "GCPJOBS_EMULATOR_HOST" in message and "HOST:PORT" in message
    assert "\n" not in message


def test_parse_host_port_accepts_an_http_prefix() -> None:
    assert parse_host_port("http://127.0.0.1:8471/", "x") == ("127.0.0.1", 8471)


# ----------------------------------------------------------------------------------- gcp


def test_explicit_project_means_gcp() -> None:
    target = resolve_target(project="my-project")
    assert target.kind == "gcp" and target.project == "my-project"
    assert target.grpc_address is None and not target.embedded
    assert target.api_endpoint("europe-west4") == "europe-west4-aiplatform.googleapis.com"


@pytest.mark.parametrize("variable", ["GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT"])
def test_project_variables(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "from-env")
    assert resolve_target() == Target(kind="gcp", project="from-env")


def test_project_variable_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCLOUD_PROJECT", "third")
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "second")
    assert configured_project() == "second"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "first")
    assert configured_project() == "first"


def test_service_account_key_file_names_the_project(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "sa-project"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    assert resolve_target().project == "sa-project"
    target = resolve_target(credentials_file=str(key))
    assert (target.kind, target.credentials_file) == ("gcp", str(key))


def test_credentials_without_a_project_are_an_error_not_the_emulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "authorized_user", "client_secret": "s3cret"}))
    with pytest.raises(GcpJobsError) as caught:
        resolve_target(credentials_file=str(key))
    assert "GOOGLE_CLOUD_PROJECT" in str(caught.value) and "s3cret" not in str(caught.value)


def test_adc_file_quota_project(clean_environment: Path) -> None:
    (clean_environment / "application_default_credentials.json").write_text(
        json.dumps({"type": "authorized_user", "quota_project_id": "adc-project"})
    )
    assert resolve_target() == Target(kind="gcp", project="adc-project")


def test_gcloud_active_configuration(clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_gcloud_config(clean_environment, "work", "work-project")
    write_gcloud_config(clean_environment, "default", "default-project", active=False)
    assert resolve_target().project == "work-project"
    monkeypatch.setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "default")
    assert resolve_target().project == "default-project"


def test_gcloud_default_configuration_without_active_file(clean_environment: Path) -> None:
    write_gcloud_config(clean_environment, "default", "default-project", active=False)
    assert resolve_target().project == "default-project"


def test_gcloud_configuration_without_project_is_no_project(clean_environment: Path) -> None:
    (clean_environment / "configurations").mkdir()
    (clean_environment / "configurations" / "config_default").write_text("[core]\naccount = a@b.c\n")
    assert configured_project() is None


def test_nothing_configured_without_embedding_is_a_one_line_error() -> None:
    with pytest.raises(GcpJobsError) as caught:
        resolve_target(start_embedded=False)
    message = str(caught.value)
    assert "GOOGLE_CLOUD_PROJECT" in message and "GCPJOBS_EMULATOR_HOST" in message
    assert "\n" not in message
