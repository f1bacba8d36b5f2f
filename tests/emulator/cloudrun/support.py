"""The OFFICIAL Cloud Run v2 clients pointed at an emulator, and small builders and waits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

from gcpjobs.emulator.process import EmulatorProcess
from tests.waiting import wait_for

PROJECT = "gcpjobs-test"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
IMAGE = "us-docker.pkg.dev/example/job:latest"


@dataclass
class RunClients:
    """A Jobs and an Executions client over one transport."""

    jobs: run_v2.JobsClient
    executions: run_v2.ExecutionsClient
    transport: str

    def close(self) -> None:
        self.jobs.transport.close()
        self.executions.transport.close()


def run_clients(server: EmulatorProcess, transport: str) -> RunClients:
    if transport == "grpc":
        channel = grpc.insecure_channel(server.grpc_address)
        return RunClients(
            run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel)),
            run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel)),
            transport,
        )
    options = {"api_endpoint": server.rest_endpoint}
    return RunClients(
        run_v2.JobsClient(transport="rest", client_options=options, credentials=AnonymousCredentials()),
        run_v2.ExecutionsClient(
            transport="rest", client_options=options, credentials=AnonymousCredentials()
        ),
        transport,
    )


def job_id(prefix: str = "job") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def job(
    command: Sequence[str] = ("true",),
    *,
    args: Sequence[str] = (),
    task_count: int = 1,
    parallelism: int = 0,
    max_retries: int | None = 0,
    timeout: timedelta | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, tuple[str, str]] | None = None,
    labels: Mapping[str, str] | None = None,
    template_labels: Mapping[str, str] | None = None,
    **extra_task: Any,
) -> run_v2.Job:
    """A job whose single container runs `command + args` on the host."""
    variables: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in (env or {}).items()]
    variables += [
        {"name": k, "value_source": {"secret_key_ref": {"secret": secret, "version": version}}}
        for k, (secret, version) in (secrets or {}).items()
    ]
    task: dict[str, Any] = {
        "containers": [{"image": IMAGE, "command": list(command), "args": list(args), "env": variables}],
        **extra_task,
    }
    if max_retries is not None:
        task["max_retries"] = max_retries
    if timeout is not None:
        task["timeout"] = timeout
    return run_v2.Job(
        labels=dict(labels or {}),
        template={
            "labels": dict(template_labels or {}),
            "task_count": task_count,
            "parallelism": parallelism,
            "template": task,
        },
    )


def create(clients: RunClients, spec: run_v2.Job, name: str | None = None) -> run_v2.Job:
    created: run_v2.Job = clients.jobs.create_job(
        parent=PARENT, job=spec, job_id=name or job_id()
    ).result(timeout=10)
    return created


def completed(execution: run_v2.Execution) -> bool:
    return "completion_time" in execution


def wait_completed(clients: RunClients, name: str, timeout: float = 20.0) -> run_v2.Execution:
    last: list[run_v2.Execution] = []

    def done() -> run_v2.Execution | None:
        execution = clients.executions.get_execution(name=name)
        last[:] = [execution]
        return execution if completed(execution) else None

    return wait_for(done, timeout=timeout,
                    message=lambda: f"{name} to complete; last {last[0] if last else '?'}")


def condition(execution: run_v2.Execution, type_: str) -> run_v2.Condition:
    return next(c for c in execution.conditions if c.type_ == type_)
