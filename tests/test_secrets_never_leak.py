"""No secret value shows up where gcpjobs or its emulator writes: previews, the CLI's output and
errors, the emulator's records (SQLite and every file under its data directory) and its logs.

The secrets: a Secret Manager value (the emulator's local store, read by a Cloud Run job through
a SecretRef), a plain env value whose name looks secret, a remote step's signing key
(kept in a per-run Secret Manager secret, never in the job), and a service-account key file's private key. The jobs check that they
received their secrets (by hash) and never print them: a job printing its own secret would be the
user's doing.

Plain env values are part of the job itself: the real services keep them
in the job's record and return them from GetCustomJob / GetJob, and so does the emulator's SQLite
store. For those values the store is therefore not scanned; every other file is.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.steps.signing import KEY_ENV, KEY_SECRET_ENV
from tests.cli.support import clean_env, gcpjobs, gcpjobs_process
from tests.clients.conftest import official_client, unique_label
from tests.steps import functions
from tests.steps.conftest import REPO, point_at, step_job

SECRET_MANAGER_VALUE = "sm-value-5f1d8c2b-never-shown"
ENV_SECRET_VALUE = "env-token-9a7e3b41-never-shown"
PRIVATE_KEY_MARKER = "PRIVATEKEYMARKER7c3f1a9e0b2d"
PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    f"MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA{PRIVATE_KEY_MARKER}\n"
    "-----END PRIVATE KEY-----\n"
)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


CHECK_ENV = (
    "import hashlib, os, sys\n"
    "want = dict(arg.split('=', 1) for arg in sys.argv[1:])\n"
    "bad = [k for k, h in want.items()\n"
    "       if hashlib.sha256(os.environ.get(k, '').encode()).hexdigest() != h]\n"
    "print('checked', sorted(want), 'mismatched', bad)\n"
    "sys.exit(3 if bad else 0)\n"
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("secrets-emulator"),
                         cancel_grace_seconds=1.0) as server:
        server.add_secret("db-password", SECRET_MANAGER_VALUE)
        yield server


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("credentials") / "key.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "my-project-123", "private_key_id": "abc123",
        "private_key": PRIVATE_KEY, "client_email": "sa@my-project-123.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


def cli_env(emulator: EmulatorProcess | None, key_file: Path, tmp_path: Path) -> dict[str, str]:
    extra = {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
             "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "GCPJOBS_DEBUG": ""}
    if emulator is not None:
        extra["GCPJOBS_EMULATOR_HOST"] = emulator.grpc_address
    return clean_env(**extra)


def write_job(tmp_path: Path, name: str, document: dict[str, object]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def cloud_run_job(tmp_path: Path) -> Path:
    return write_job(tmp_path, "cloud-run-secrets", {
        "kind": "cloud-run", "name": "secrets-job", "image": "python:3.11-slim",
        "command": [sys.executable, "-c", CHECK_ENV],
        "args": [f"DB_PASSWORD={digest(SECRET_MANAGER_VALUE)}",
                 f"API_TOKEN={digest(ENV_SECRET_VALUE)}"],
        "env": {"DB_PASSWORD": {"secret": "db-password", "version": "latest"},
                "API_TOKEN": ENV_SECRET_VALUE},
        "max_retries": 0, "labels": {"test": unique_label()},
    })


def vertex_job(tmp_path: Path, *, fail: bool = False) -> Path:
    return write_job(tmp_path, "vertex-failing" if fail else "vertex-secrets", {
        "kind": "vertex", "name": "secrets-job", "image": "python:3.11-slim",
        "command": [sys.executable, "-c", CHECK_ENV],
        "args": [f"API_TOKEN={digest(ENV_SECRET_VALUE if not fail else 'other')}"],
        "env": {"API_TOKEN": ENV_SECRET_VALUE}, "labels": {"test": unique_label()},
    })


def files_under(root: Path, *, skip_store: bool) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(root).parts
        if relative[0] == "secrets":  # the local Secret Manager itself
            continue
        if skip_store and path.name.endswith((".sqlite", ".sqlite3", ".db", "-wal", "-shm",
                                              "-journal")):
            continue
        yield path


def assert_absent(secret: str, where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    assert secret.encode() not in data, f"{secret!r} appears in {where}"


def scan_data_dir(emulator: EmulatorProcess, secret: str, *, skip_store: bool) -> int:
    scanned = 0
    for path in files_under(emulator.data_dir, skip_store=skip_store):
        assert_absent(secret, str(path.relative_to(emulator.data_dir)), path.read_bytes())
        scanned += 1
    return scanned


def test_previews_redact_secret_env_values(tmp_path: Path, key_file: Path) -> None:
    env = cli_env(None, key_file, tmp_path)
    for job in (cloud_run_job(tmp_path), vertex_job(tmp_path)):
        for fmt in ("yaml", "json"):
            result = gcpjobs("preview", str(job), "--format", fmt, env=env)
            assert result.returncode == 0, result.stderr
            assert "API_TOKEN" in result.stdout  # the variable is shown, its value is not
            assert_absent(ENV_SECRET_VALUE, f"preview --format {fmt}", result.stdout + result.stderr)
            assert_absent(PRIVATE_KEY_MARKER, "preview", result.stdout + result.stderr)


def test_jobs_get_their_secrets_and_nothing_records_or_prints_them(
    tmp_path: Path, key_file: Path, emulator: EmulatorProcess
) -> None:
    env = cli_env(emulator, key_file, tmp_path)
    outputs: list[str] = []
    for job, expected in ((cloud_run_job(tmp_path), 0), (vertex_job(tmp_path), 0),
                          (vertex_job(tmp_path, fail=True), 1)):
        result = gcpjobs("run", str(job), env=env, timeout=90)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == expected, result.stdout + result.stderr
    for command in (("list",), ("list", "--kind", "cloud-run")):
        result = gcpjobs(*command, env=env)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)

    for secret in (SECRET_MANAGER_VALUE, ENV_SECRET_VALUE, PRIVATE_KEY_MARKER):
        for index, text in enumerate(outputs):
            assert_absent(secret, f"CLI output #{index}", text)
        assert_absent(secret, "the emulator's output", "\n".join(emulator.output))
    # The Secret Manager value is never part of a request: not even the store has it.
    assert scan_data_dir(emulator, SECRET_MANAGER_VALUE, skip_store=False) > 3
    assert scan_data_dir(emulator, ENV_SECRET_VALUE, skip_store=True) > 3


def test_errors_do_not_echo_secret_values(tmp_path: Path, key_file: Path) -> None:
    env = cli_env(None, key_file, tmp_path)
    bad_documents: list[dict[str, object]] = [
        # An env value of the wrong type, a bad name beside a secret, an unknown field.
        {"kind": "vertex", "image": "x", "env": {"API_TOKEN": [ENV_SECRET_VALUE]}},
        {"kind": "vertex", "image": "x", "env": {"API_TOKEN": {"v": ENV_SECRET_VALUE}}},
        {"kind": "cloud-run", "image": "x", "env": {"API_TOKEN": {"secret": ENV_SECRET_VALUE,
                                                                  "version": [1]}}},
        {"kind": "vertex", "image": "x", "env": {"API_TOKEN": ENV_SECRET_VALUE}, "machine_type": 5},
    ]
    for index, document in enumerate(bad_documents):
        job = write_job(tmp_path, f"bad-{index}", document)
        for command in (("preview", str(job)), ("run", str(job))):
            result = gcpjobs(*command, env=env)
            assert result.returncode == 2, result.stdout + result.stderr
            assert_absent(ENV_SECRET_VALUE, f"{command[0]} of bad document {index}",
                          result.stdout + result.stderr)
    # Real Google Cloud with a key file that does not load: the error names no key material.
    # The real console script: all that a process shows, what the auth libraries log too.
    result = gcpjobs_process("run", str(vertex_job(tmp_path)), "--project", "my-project-123",
                             env=env)
    assert result.returncode != 0
    assert_absent(PRIVATE_KEY_MARKER, "the credentials error", result.stdout + result.stderr)
    assert_absent("BEGIN PRIVATE KEY", "the credentials error", result.stdout + result.stderr)


def test_a_remote_steps_key_stays_out_of_the_job_logs_and_the_store(
    tmp_path: Path, emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gcpjobs import run_remote
    from gcpjobs.steps import signing

    point_at(monkeypatch, emulator, tmp_path)
    store = tmp_path / "store"
    monkeypatch.setenv("GCPJOBS_STEP_STORE", str(store))
    monkeypatch.syspath_prepend(str(REPO))
    # The key a call makes, known here so that it can be looked for everywhere.
    key = bytes.fromhex("5e" * 16 + "c7" * 16)
    monkeypatch.setattr(signing, "new_key", lambda: key)
    label = unique_label()
    assert run_remote(functions.add, 2, 3, settings={"labels": {"test": label}}) == 5

    client = official_client(emulator)
    job = step_job(client, label)
    assert job.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED
    env = {var.name: var.value for var in job.job_spec.worker_pool_specs[0].container_spec.env}
    assert KEY_ENV not in env  # the job's spec names the key's secret, never the key
    assert env[KEY_SECRET_ENV].startswith("projects/gcpjobs-local/secrets/gcpjobs-step-")

    spellings = (key.hex(), key.hex().upper())
    scanned = 0
    for path in sorted(store.rglob("*")):
        if path.is_file():
            for text in spellings:
                assert_absent(text, f"the step store ({path.relative_to(store)})",
                              path.read_bytes())
            scanned += 1
    assert scanned >= 2  # at least the payload and the result
    # The job record too, now: nothing in the job holds the key (and its secret is deleted).
    for text in spellings:
        assert scan_data_dir(emulator, text, skip_store=False) > 0
        assert_absent(text, "the emulator's output", "\n".join(emulator.output))
