"""Fixtures for the remote step tests: the environment a user's process would have, pointed at
the session emulator, and helpers to find a step's job through the official client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from tests.clients.conftest import PARENT, official_client, unique_label
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StepEnv:
    emulator: EmulatorProcess
    store: Path
    env: dict[str, str]  # the environment a subprocess caller gets

    def runs(self) -> list[Path]:
        runs = self.store / "runs"
        return sorted(runs.iterdir()) if runs.is_dir() else []

    def archives(self) -> list[Path]:
        code = self.store / "code"
        return sorted(code.glob("*.zip")) if code.is_dir() else []


def point_at(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorProcess, tmp_path: Path) -> None:
    """This process's environment as a user's, with nothing pointing at real Google Cloud."""
    for name in list(os.environ):
        if name.startswith(("GOOGLE_", "CLOUDSDK_", "GCLOUD_", "GCPJOBS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GCPJOBS_EMULATOR_HOST", emulator.grpc_address)
    monkeypatch.setenv("GCPJOBS_EMULATOR_REST_HOST", f"{emulator.host}:{emulator.rest_port}")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GCPJOBS_STEP_IMAGE", "python:3.11-slim")


@pytest.fixture()
def step_env(emulator: EmulatorProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StepEnv:
    point_at(monkeypatch, emulator, tmp_path)
    store = tmp_path / "store"
    monkeypatch.setenv("GCPJOBS_STEP_STORE", str(store))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return StepEnv(emulator=emulator, store=store, env=env)


@pytest.fixture()
def jobs(emulator: EmulatorProcess) -> Iterator[aiplatform_v1.JobServiceClient]:
    """The official client, to see the steps' jobs independently of gcpjobs."""
    client = official_client(emulator)
    yield client
    client.transport.close()


def step_job(jobs: aiplatform_v1.JobServiceClient, label: str, state: str | None = None,
             timeout: float = 30.0) -> aiplatform_v1.CustomJob:
    """The one Vertex job labelled test=`label` (in `state`, e.g. JOB_STATE_RUNNING)."""

    def find() -> aiplatform_v1.CustomJob | None:
        request = aiplatform_v1.ListCustomJobsRequest(parent=PARENT, filter=f"labels.test={label}")
        found = list(jobs.list_custom_jobs(request=request))
        if len(found) != 1:
            return None
        if state is not None and found[0].state.name != state:
            return None
        return found[0]

    return wait_for(find, timeout=timeout, message=f"the job labelled test={label} in {state}")


__all__ = ["PARENT", "REPO", "StepEnv", "point_at", "step_job", "unique_label"]
