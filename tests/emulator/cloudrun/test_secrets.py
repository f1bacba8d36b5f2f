"""Secret references in env are resolved from the emulator's local secret store."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import RunClients, condition, create, job, job_id

DUMP = 'printf "%s" "$TOKEN" > "$OUT/token"'


def test_secret_versions_are_resolved(grpc_run: RunClients, emulator: EmulatorProcess, tmp_path: Path) -> None:
    secret = job_id("secret")
    assert emulator.add_secret(secret, "first") == "1"
    assert emulator.add_secret(secret, "second") == "2"
    assert (emulator.data_dir / "secrets" / secret / "1").read_text() == "first"

    for version, expected in (("latest", "second"), ("1", "first")):
        created = create(grpc_run, job(["sh", "-c", DUMP], env={"OUT": str(tmp_path)},
                                       secrets={"TOKEN": (secret, version)}))
        grpc_run.jobs.run_job(name=created.name).result(timeout=20)
        assert (tmp_path / "token").read_text() == expected

    # The projects/P/secrets/NAME spelling names the same local secret.
    created = create(grpc_run, job(["sh", "-c", DUMP], env={"OUT": str(tmp_path)},
                                   secrets={"TOKEN": (f"projects/p/secrets/{secret}", "latest")}))
    grpc_run.jobs.run_job(name=created.name).result(timeout=20)
    assert (tmp_path / "token").read_text() == "second"


def test_an_unknown_secret_fails_the_task_clearly(grpc_run: RunClients) -> None:
    created = create(grpc_run, job(["true"], secrets={"TOKEN": ("no-such-secret", "latest")}))
    operation = grpc_run.jobs.run_job(name=created.name)
    with pytest.raises(exceptions.FailedPrecondition):  # the failed run fails the operation
        operation.result(timeout=20)
    execution = grpc_run.executions.get_execution(name=operation.metadata.name)
    assert execution.failed_count == 1
    message = condition(execution, "Completed").message
    assert "Environment variable TOKEN: Secret 'no-such-secret' was not found" in message
    assert "POST /_emulator/secrets" in message
