"""A remote step's signing key lives in a Secret Manager secret of its own (issue 11, finding 9):
the job's spec names only the secret's version, no process's environment or command line holds
the key, whoever reads the job cannot forge its result, and the secret lives as long as the
outcome needs verifying (deleted at once when no job was made). Everything is seen through the
official clients (aiplatform_v1, run_v2, secretmanager_v1) against the session emulator."""

from __future__ import annotations

import contextlib
import pickle
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from google.cloud import aiplatform_v1, run_v2, secretmanager_v1
from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from gcpjobs import RemoteStepError, fetch_result, run_remote
from gcpjobs.clients.target import EMULATOR_PROJECT
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import GcpJobsError
from gcpjobs.steps.payload import Outcome, encode_outcome
from gcpjobs.steps.signing import KEY_SECRET_ENV, key_from_hex, new_key, seal
from gcpjobs.steps.store import RESULT
from tests.cli.support import assert_one_line_error, gcpjobs
from tests.clients.conftest import request_counts
from tests.steps import functions
from tests.steps.conftest import PARENT, StepEnv, step_job, unique_label
from tests.waiting import wait_for

SECRET_VERSION = re.compile(
    rf"^projects/{EMULATOR_PROJECT}/secrets/gcpjobs-step-(?P<run>[A-Za-z0-9_-]+)/versions/1$")
CREATE_JOB = "JobService.CreateCustomJob"
CREATE_SECRET = "SecretManagerService.CreateSecret"
DELETE_SECRET = "SecretManagerService.DeleteSecret"


@pytest.fixture()
def secrets(emulator: EmulatorProcess) -> Iterator[secretmanager_v1.SecretManagerServiceClient]:
    """The official Secret Manager client: what someone with access to the secret sees."""
    channel = grpc.insecure_channel(emulator.grpc_address)
    client = secretmanager_v1.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=channel))
    yield client
    client.transport.close()


def key_of(secrets: secretmanager_v1.SecretManagerServiceClient, version: str) -> bytes:
    return key_from_hex(secrets.access_secret_version(name=version).payload.data.decode())


def as_key(value: str) -> bytes | None:
    """`value` as a step key, as a forger would try each value the job shows."""
    try:
        return key_from_hex(value)
    except ValueError:
        return None


def assert_names_only_the_secret(env: Mapping[str, str], arguments: list[str],
                                 key: bytes) -> str:
    """The job's env and command line hold no key, and name the key's secret version; returns
    the run id that version belongs to."""
    shown = [*env.items(), *((f"argument {index}", value) for index, value in enumerate(arguments))]
    # Names only in the failure message: it must not print a key.
    holding = [where for where, value in shown
               if key.hex() in value.lower() or as_key(value) is not None]
    assert holding == [], "these hold a step key"
    # Only the version's name: no other variable like the old GCPJOBS_STEP_KEY.
    assert [name for name in env if name.startswith("GCPJOBS_STEP_KEY")] == [KEY_SECRET_ENV]
    match = SECRET_VERSION.match(env[KEY_SECRET_ENV])
    assert match is not None, env[KEY_SECRET_ENV]
    return match["run"]


def started_with(emulator: EmulatorProcess) -> dict[int, tuple[bytes, bytes]]:
    """The environment (/proc/PID/environ: what the process started with, kept even after it
    removed a variable from os.environ) and command line of this process, the emulator and
    all its descendants (its jobs)."""
    server = psutil.Process(emulator.pid)
    seen = {}
    for process in [psutil.Process(), server, *server.children(recursive=True)]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            seen[process.pid] = (Path(f"/proc/{process.pid}/environ").read_bytes(),
                                 Path(f"/proc/{process.pid}/cmdline").read_bytes())
    return seen


def assert_key_in_no_process(emulator: EmulatorProcess, key: bytes, marker: tuple[str, str]) -> None:
    """No process holds the key in its environment or command line, once the step's own
    process (the one whose environment has `marker`, NAME and VALUE) is there to be looked at."""
    marked = f"{marker[0]}={marker[1]}".encode()

    def with_the_step() -> dict[int, tuple[bytes, bytes]] | None:
        seen = started_with(emulator)
        return seen if any(marked in environ.split(b"\0") for environ, _ in seen.values()) else None

    seen = wait_for(with_the_step, timeout=30, message=f"a process with {marker[0]}={marker[1]}")
    assert seen is not None
    needles = (key.hex().encode(), key.hex().upper().encode(), key)
    holding = [pid for pid, (environ, cmdline) in seen.items()
               if any(needle in environ or needle in cmdline for needle in needles)]
    assert holding == [], "these processes hold the step's key"


class HeldStep:
    """A step whose function waits for a file, called in a thread: it runs until released."""

    def __init__(self, tmp_path: Path, settings: Mapping[str, Any]) -> None:
        self.release_file = tmp_path / f"release-{unique_label()}"
        self.outcome: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._call, args=(dict(settings),), daemon=True)
        self.thread.start()

    def _call(self, settings: dict[str, Any]) -> None:
        try:
            self.outcome["value"] = run_remote(functions.wait_for_file, str(self.release_file),
                                               settings=settings)
        except BaseException as error:
            self.outcome["error"] = error

    def finish(self, text: str) -> Any:
        self.release_file.write_text(text)
        self.thread.join(60)
        assert not self.thread.is_alive(), "the step did not end"
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["value"]


@contextlib.contextmanager
def held_step(tmp_path: Path, settings: Mapping[str, Any]) -> Iterator[HeldStep]:
    step = HeldStep(tmp_path, settings)
    try:
        yield step
    finally:
        step.release_file.write_text("released")  # never leave the job waiting
        step.thread.join(60)


# ------------------------------------------------------------------ not in the job, nor in any process


def test_a_vertex_step_shows_only_the_secret_version(
    step_env: StepEnv, tmp_path: Path, jobs: aiplatform_v1.JobServiceClient,
    secrets: secretmanager_v1.SecretManagerServiceClient,
) -> None:
    label = unique_label()
    with held_step(tmp_path, {"labels": {"test": label}}) as step:
        job = step_job(jobs, label, "JOB_STATE_RUNNING")
        container = job.job_spec.worker_pool_specs[0].container_spec
        env = {variable.name: variable.value for variable in container.env}
        key = key_of(secrets, env[KEY_SECRET_ENV])
        run_id = assert_names_only_the_secret(
            env, [*container.command, *container.args], key)
        assert list(container.args) == [str(step_env.store / "runs" / run_id)]
        assert_key_in_no_process(step_env.emulator, key,
                                 ("CLOUD_ML_JOB_ID", job.name.rsplit("/", 1)[-1]))
        assert step.finish("done") == "done"


def test_a_cloud_run_step_shows_only_the_secret_version(
    step_env: StepEnv, tmp_path: Path, secrets: secretmanager_v1.SecretManagerServiceClient,
) -> None:
    label = unique_label()
    channel = grpc.insecure_channel(step_env.emulator.grpc_address)
    run_jobs = run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel))
    executions = run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))

    def created() -> run_v2.Execution | None:
        return next((execution for execution in executions.list_executions(
            parent=f"{PARENT}/jobs/-") if execution.labels.get("test") == label), None)

    try:
        with held_step(tmp_path, {"kind": "cloud-run", "labels": {"test": label}}) as step:
            execution = wait_for(created, timeout=30, message="the step's execution")
            assert execution is not None
            job = run_jobs.get_job(name=execution.name.split("/executions/", 1)[0])
            run_id = ""
            for container in (job.template.template.containers[0],
                              execution.template.containers[0]):
                env = {variable.name: variable.value for variable in container.env}
                key = key_of(secrets, env[KEY_SECRET_ENV])
                run_id = assert_names_only_the_secret(
                    env, [*container.command, *container.args], key)
            assert job.labels["gcpjobs-submission-id"] == run_id
            assert_key_in_no_process(step_env.emulator, key,
                                     ("CLOUD_RUN_EXECUTION", execution.name.rsplit("/", 1)[-1]))
            assert step.finish("done") == "done"
    finally:
        channel.close()


# ----------------------------------------------------------------------------- forgery


def test_who_reads_the_job_cannot_forge_its_result(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient,
    secrets: secretmanager_v1.SecretManagerServiceClient,
) -> None:
    """The forger reads everything in the job's spec and writes to the store, but cannot access
    the secret: a key from the spec (older gcpjobs put it there) or one made up is refused."""
    label = unique_label()
    assert run_remote(functions.echo, "genuine", settings={"labels": {"test": label}}) == "genuine"
    job = step_job(jobs, label)
    container = job.job_spec.worker_pool_specs[0].container_spec
    env = {variable.name: variable.value for variable in container.env}
    [run_url] = container.args
    run_id = Path(run_url).name
    result = Path(run_url) / RESULT

    def returned(value: str, key: bytes) -> bytes:
        outcome = Outcome(kind="returned", pickled=pickle.dumps(value))
        return seal(key, "result", run_id, encode_outcome(outcome))

    shown_keys = [key for value in env.values() if (key := as_key(value)) is not None]
    result.write_bytes(returned("forged", shown_keys[0] if shown_keys else new_key()))
    with pytest.raises(RemoteStepError, match="was refused and not unpickled: the result's "
                                              "signature does not match"):
        fetch_result(job.name)
    # Whoever holds the secret's key can: the refusal above was the key's doing, nothing else's.
    result.write_bytes(returned("sealed with the secret's key", key_of(secrets, env[KEY_SECRET_ENV])))
    assert fetch_result(job.name) == "sealed with the secret's key"


# ------------------------------------------------------------------------- the secret's life


def step_secrets(secrets: secretmanager_v1.SecretManagerServiceClient) -> set[str]:
    return {secret.name.rsplit("/", 1)[-1]
            for secret in secrets.list_secrets(parent=f"projects/{EMULATOR_PROJECT}")
            if secret.name.rsplit("/", 1)[-1].startswith("gcpjobs-step-")}


def test_no_job_created_leaves_no_secret(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient,
    secrets: secretmanager_v1.SecretManagerServiceClient,
) -> None:
    label = unique_label()
    before = request_counts(step_env.emulator)
    step_env.emulator.inject_fault(CREATE_JOB, "permission_denied")
    try:
        with pytest.raises(GcpJobsError, match=r"PERMISSION_DENIED \(CreateCustomJob\)"):
            run_remote(functions.add, 1, 2, settings={"labels": {"test": label}})
    finally:
        step_env.emulator.clear_faults()
    after = request_counts(step_env.emulator)
    [run] = step_env.runs()  # the call was packed; its id names its secret
    request = aiplatform_v1.ListCustomJobsRequest(parent=PARENT, filter=f"labels.test={label}")
    assert list(jobs.list_custom_jobs(request=request)) == []
    # Its key was stored, then deleted once the create had failed.
    assert after.get(CREATE_SECRET, 0) - before.get(CREATE_SECRET, 0) == 1
    assert after.get(DELETE_SECRET, 0) - before.get(DELETE_SECRET, 0) == 1
    assert f"gcpjobs-step-{run.name}" not in step_secrets(secrets)


def test_the_secret_outlives_the_step_until_it_expires_or_is_deleted(
    step_env: StepEnv, jobs: aiplatform_v1.JobServiceClient,
    secrets: secretmanager_v1.SecretManagerServiceClient,
) -> None:
    label = unique_label()
    assert run_remote(functions.echo, [1, 2], settings={"labels": {"test": label}}) == [1, 2]
    job = step_job(jobs, label)
    env = {variable.name: variable.value
           for variable in job.job_spec.worker_pool_specs[0].container_spec.env}
    run_id = job.labels["gcpjobs-submission-id"]
    name = env[KEY_SECRET_ENV].split("/versions/", 1)[0]
    assert name == f"projects/{EMULATOR_PROJECT}/secrets/gcpjobs-step-{run_id}"

    secret = secrets.get_secret(name=name)
    assert dict(secret.labels) == {"gcpjobs-step-key": "true", "gcpjobs-submission-id": run_id}
    lifetime = secret.expire_time - secret.create_time
    assert abs(lifetime - timedelta(days=30)) < timedelta(minutes=1), lifetime
    # Verified as often as asked: fetching does not use the secret up.
    assert fetch_result(job.name) == [1, 2]
    assert fetch_result(job.name) == [1, 2]

    secrets.delete_secret(name=name)
    with pytest.raises(GcpJobsError) as raised:
        fetch_result(job.name)
    message = str(raised.value)
    assert "\n" not in message and name in message and "is gone" in message
    cli = gcpjobs("step", "result", job.name, env=step_env.env)
    assert_one_line_error(cli, name, "is gone")
    assert cli.returncode == 1
