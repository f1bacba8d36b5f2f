"""`gcpjobs emulator env`: one line sets a client up for the running emulator (the gcloud
configuration it writes is driven by the real gcloud in tests/emulator/cloudrun/test_gcloud_run.py)."""

from __future__ import annotations

import configparser
import json
import subprocess
from pathlib import Path

import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from gcpjobs.emulator.process import EmulatorProcess
from tests.cli.support import GCPJOBS, clean_env, gcpjobs


def test_shell_output_evaluates_to_working_settings(emulator: EmulatorProcess) -> None:
    script = f'eval "$({GCPJOBS} emulator env --data-dir {emulator.data_dir})" && env'
    result = subprocess.run(["bash", "-c", script], env=clean_env(), capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert variables["GCPJOBS_EMULATOR_HOST"] == emulator.grpc_address
    rest = f"http://{variables['GCPJOBS_EMULATOR_REST_HOST']}"
    assert rest == emulator.rest_endpoint
    assert variables["CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN"] == f"{rest}/"
    assert variables["CLOUDSDK_AUTH_DISABLE_CREDENTIALS"] == "true"

    # The settings reach the emulator: the REST endpoint with the official client, and the
    # proxy with a regional host, the way gcloud sends it.
    client = run_v2.JobsClient(transport="rest", credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": rest})
    assert list(client.list_jobs(parent="projects/env-test/locations/us-central1")) == []
    proxy = f"{variables['CLOUDSDK_PROXY_TYPE']}://{variables['CLOUDSDK_PROXY_ADDRESS']}:" \
            f"{variables['CLOUDSDK_PROXY_PORT']}"
    regional = variables["CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN"].replace("http://",
                                                                        "http://us-central1-")
    answer = requests.get(f"{regional}apis/run.googleapis.com/v1/namespaces/env-test/jobs",
                          proxies={"http": proxy}, timeout=30)
    assert answer.status_code == 200 and answer.json()["kind"] == "JobsList"


def test_json_output(emulator: EmulatorProcess) -> None:
    result = gcpjobs("emulator", "env", "--json", "--data-dir", str(emulator.data_dir),
                     "--project", "env-test", env=clean_env())
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["grpc_address"] == emulator.grpc_address
    assert document["rest_endpoint"] == emulator.rest_endpoint
    assert document["environment"]["GCPJOBS_EMULATOR_HOST"] == emulator.grpc_address
    assert document["gcloud"]["api_endpoint_overrides/run"] == f"{emulator.rest_endpoint}/"
    assert document["gcloud"]["proxy/port"] == emulator.rest_endpoint.rsplit(":", 1)[1]
    assert document["gcloud"]["core/project"] == "env-test"


def test_gcloud_writes_a_named_configuration_and_keeps_its_other_properties(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    configurations = tmp_path / "configurations"
    configurations.mkdir()
    (configurations / "config_emu").write_text("[core]\naccount = someone@example.com\n")
    env = clean_env(CLOUDSDK_CONFIG=str(tmp_path))
    result = gcpjobs("emulator", "env", "--gcloud", "emu", "--region", "europe-west1",
                     "--data-dir", str(emulator.data_dir), env=env)
    assert result.returncode == 0, result.stderr
    assert "--configuration emu" in result.stdout
    written = configparser.ConfigParser(interpolation=None)
    written.read(configurations / "config_emu")
    assert written["core"]["account"] == "someone@example.com"
    assert written["api_endpoint_overrides"]["run"] == f"{emulator.rest_endpoint}/"
    assert dict(written["proxy"]) == {"type": "http", "address": "127.0.0.1",
                                      "port": emulator.rest_endpoint.rsplit(":", 1)[1]}
    assert written["auth"]["disable_credentials"] == "true"
    assert written["run"]["region"] == "europe-west1"
    assert not (tmp_path / "active_config").exists()  # written, not activated


def test_without_a_running_emulator_it_says_so(tmp_path: Path) -> None:
    result = gcpjobs("emulator", "env", "--data-dir", str(tmp_path), env=clean_env())
    assert result.returncode == 1
    assert "no gcpjobs emulator running" in result.stderr and result.stdout == ""
