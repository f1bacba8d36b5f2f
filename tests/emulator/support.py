"""Small builders and waits shared by the emulator tests."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from google.cloud import aiplatform_v1

from tests.waiting import wait_for

PROJECT = "gcpjobs-test"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
State = aiplatform_v1.JobState
TERMINAL = frozenset({State.JOB_STATE_SUCCEEDED, State.JOB_STATE_FAILED, State.JOB_STATE_CANCELLED})
PYTHON = sys.executable


def unique(prefix: str = "t") -> str:
    """A value usable as a label value and display name, different in every call."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def pool(
    command: Sequence[str],
    *,
    replicas: int = 1,
    env: Mapping[str, str] | None = None,
    machine_type: str = "n1-standard-4",
    image: str = "us-docker.pkg.dev/example/trainer:latest",
) -> dict[str, Any]:
    return {
        "replica_count": replicas,
        "machine_spec": {"machine_type": machine_type},
        "container_spec": {
            "image_uri": image,
            "command": list(command),
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        },
    }


def custom_job(
    command: Sequence[str] = ("true",),
    *,
    display_name: str | None = None,
    labels: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: timedelta | None = None,
    extra_pools: Iterable[dict[str, Any]] = (),
    base_output_directory: str | None = None,
    enable_web_access: bool = False,
) -> aiplatform_v1.CustomJob:
    spec: dict[str, Any] = {"worker_pool_specs": [pool(command, env=env), *extra_pools]}
    if timeout is not None:
        spec["scheduling"] = {"timeout": timeout}
    if base_output_directory is not None:
        spec["base_output_directory"] = {"output_uri_prefix": base_output_directory}
    if enable_web_access:
        spec["enable_web_access"] = True
    return aiplatform_v1.CustomJob(
        display_name=display_name or unique("job-"),
        labels=dict(labels or {}),
        job_spec=spec,
    )


def wait_until(
    client: aiplatform_v1.JobServiceClient,
    name: str,
    states: Iterable[int] = TERMINAL,
    timeout: float = 20.0,
) -> aiplatform_v1.CustomJob:
    wanted = set(states)
    last: list[aiplatform_v1.CustomJob] = []

    def reached() -> aiplatform_v1.CustomJob | None:
        job = client.get_custom_job(name=name)
        last[:] = [job]
        return job if job.state in wanted else None

    return wait_for(
        reached,
        timeout=timeout,
        message=lambda: f"{name} to reach {sorted(State(s).name for s in wanted)}; "
        f"last state {State(last[0].state).name if last else '?'}",
    )


def read_pids(directory: Path, names: Iterable[str], timeout: float = 10.0) -> dict[str, int]:
    """Wait until the job has written every pid file, then read them."""
    names = list(names)
    files = [directory / name for name in names]
    wait_for(lambda: all(f.is_file() and f.read_text().strip() for f in files), timeout=timeout,
             message=f"pid files {names} in {directory}")
    return {name: int((directory / name).read_text().strip()) for name in names}


def process_gone(pid: int) -> bool:
    """Exited (a zombie has exited too: this sandbox's init does not reap orphans)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def processes_in(directory: Path) -> list[psutil.Process]:
    """Live processes whose working directory is inside `directory` (a job's replicas)."""
    inside = []
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info.get("cwd")
        if cwd and process.info.get("status") != psutil.STATUS_ZOMBIE and Path(cwd).is_relative_to(directory):
            inside.append(process)
    return inside
