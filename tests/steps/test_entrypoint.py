"""The job's side, run directly as the job runs it: `python -m gcpjobs.steps.entrypoint URL`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.results import JobResult, JobStatus
from gcpjobs.states import JobState
from gcpjobs.steps.outcome import read_outcome
from gcpjobs.steps.packaging import prepare_call
from gcpjobs.steps.signing import KEY_SECRET_ENV, new_key
from gcpjobs.steps.store import LocalStore, run_key
from tests.steps import functions
from tests.steps.conftest import REPO

HEAVY = ("google", "grpc", "pydantic", "fsspec", "yaml", "typer", "rich", "numpy", "psutil")


def key_secret(emulator: EmulatorProcess, key_text: str) -> str:
    """A secret version in the emulator's Secret Manager holding `key_text`, as a caller makes."""
    channel = grpc.insecure_channel(emulator.grpc_address)
    client = secretmanager_v1.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=channel))
    secret = client.create_secret(request={
        "parent": "projects/gcpjobs-local", "secret_id": f"gcpjobs-step-{uuid.uuid4().hex}",
        "secret": {"replication": {"automatic": {}}}})
    version = client.add_secret_version(request={"parent": secret.name,
                                                 "payload": {"data": key_text.encode()}})
    client.transport.close()
    return str(version.name)


def entrypoint(*args: str, key: bytes | None = None,
               emulator: EmulatorProcess | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCPJOBS_")}
    if key is not None:
        assert emulator is not None
        env[KEY_SECRET_ENV] = key_secret(emulator, key.hex())
        env["GCPJOBS_EMULATOR_HOST"] = emulator.grpc_address
    return subprocess.run([sys.executable, "-m", "gcpjobs.steps.entrypoint", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False, cwd=REPO)


def test_imports_nothing_heavy() -> None:
    # (`google` and `google.cloud` exist from start-up: a namespace package's .pth makes them.)
    code = ("import sys; before = set(sys.modules); import gcpjobs.steps.entrypoint; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} & "
            f"set({HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_decorators_in_a_job_check_nothing_again() -> None:
    """In a step's job, importing the user's module must not load the spec models (pydantic)
    for its `@remote` decorators: the caller checked the settings."""
    code = ("import sys; before = set(sys.modules); import tests.steps.functions; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} & "
            f"set({HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=REPO, env={**os.environ, "GCPJOBS_STEP_RUN_ID": "r"})
    assert done.stdout.strip() == "[]"


def test_runs_a_payload_and_writes_a_sealed_result(tmp_path: Path,
                                                   emulator: EmulatorProcess) -> None:
    store = LocalStore(str(tmp_path / "store"))
    key = new_key()
    prepared = prepare_call(functions.add, (40,), {"b": 2}, code_dir=None, store=store,
                            run_id="run1", key=key)
    assert prepared.code_bytes_uploaded > 0
    done = entrypoint(store.run_url("run1"), key=key, emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "running tests.steps.functions.add" in done.stderr
    assert store.exists(run_key("run1", "started"))
    finished = JobResult(JobStatus(name="job", display_name="job", state=JobState.SUCCEEDED))
    assert read_outcome(store, "run1", key, finished, what="step").unwrap() == 42


def test_a_wrong_key_is_refused(tmp_path: Path, emulator: EmulatorProcess) -> None:
    store = LocalStore(str(tmp_path / "store"))
    prepare_call(functions.touch, (str(tmp_path / "marker"),), {}, code_dir=False, store=store,
                 run_id="run1", key=new_key())
    done = entrypoint(store.run_url("run1"), key=new_key(), emulator=emulator)
    assert done.returncode == 2
    assert "refused: the payload's signature does not match" in done.stderr
    assert not (tmp_path / "marker").exists()


def test_bad_invocations(tmp_path: Path, emulator: EmulatorProcess) -> None:
    no_key = entrypoint(str(tmp_path / "runs" / "x"))
    assert no_key.returncode == 2 and f"{KEY_SECRET_ENV} is not set" in no_key.stderr
    base = {k: v for k, v in os.environ.items() if not k.startswith("GCPJOBS_")}
    base["GCPJOBS_EMULATOR_HOST"] = emulator.grpc_address
    bad_key = subprocess.run(
        [sys.executable, "-m", "gcpjobs.steps.entrypoint", str(tmp_path / "runs" / "x")],
        env={**base, KEY_SECRET_ENV: key_secret(emulator, "secret-value-zz")},
        capture_output=True, text=True, check=False)
    assert bad_key.returncode == 2 and "is not hex" in bad_key.stderr
    assert "secret-value-zz" not in bad_key.stderr
    gone = subprocess.run(
        [sys.executable, "-m", "gcpjobs.steps.entrypoint", str(tmp_path / "runs" / "x")],
        env={**base, KEY_SECRET_ENV: "projects/gcpjobs-local/secrets/no-such/versions/1"},
        capture_output=True, text=True, check=False)
    assert gone.returncode == 2 and "cannot read the step's key from Secret Manager" in gone.stderr
    assert "NotFound" in gone.stderr
    not_a_run = entrypoint(str(tmp_path / "elsewhere"), key=new_key(), emulator=emulator)
    assert not_a_run.returncode == 2 and "is not a run URL" in not_a_run.stderr
    missing = entrypoint(str(tmp_path / "runs" / "absent"), key=new_key(), emulator=emulator)
    assert missing.returncode == 2 and "cannot read the step" in missing.stderr
    usage = entrypoint()
    assert usage.returncode == 2 and "usage: python -m gcpjobs.steps.entrypoint" in usage.stderr
