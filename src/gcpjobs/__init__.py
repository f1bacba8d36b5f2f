"""gcpjobs: run ML and data work as Google Cloud jobs (Vertex AI custom jobs, Cloud Run jobs).

The public names are loaded lazily so that `import gcpjobs` (and the CLI) stay fast: the Google
client libraries cost most of a second to import and are only needed once a request is sent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "VertexJob": "gcpjobs.specs.vertex",
    "WorkerPool": "gcpjobs.specs.vertex",
    "CloudRunJob": "gcpjobs.specs.cloudrun",
    "SecretRef": "gcpjobs.specs.cloudrun",
    "load_job_file": "gcpjobs.specs.jobfile",
    "AsyncVertexClient": "gcpjobs.clients.vertex",
    "VertexClient": "gcpjobs.clients.vertex",
    "AsyncCloudRunClient": "gcpjobs.clients.cloudrun",
    "CloudRunClient": "gcpjobs.clients.cloudrun",
    "JobTemplate": "gcpjobs.specs.templates",
    "JobState": "gcpjobs.states",
    "JobStatus": "gcpjobs.results",
    "JobResult": "gcpjobs.results",
    "JobError": "gcpjobs.results",
    "StateChange": "gcpjobs.watch.events",
    "GcpJobsError": "gcpjobs.errors",
    "SpecError": "gcpjobs.errors",
    "ApiError": "gcpjobs.errors",
    "JobNotFoundError": "gcpjobs.errors",
    "RemoteStepError": "gcpjobs.errors",
    "RemoteFunction": "gcpjobs.steps.remote",
    "remote": "gcpjobs.steps.remote",
    "run_remote": "gcpjobs.steps.remote",
    "run_remote_async": "gcpjobs.steps.remote",
    "fetch_result": "gcpjobs.steps.remote",
    "fetch_result_async": "gcpjobs.steps.remote",
}

__all__ = [
    "ApiError",
    "AsyncCloudRunClient",
    "AsyncVertexClient",
    "CloudRunClient",
    "CloudRunJob",
    "GcpJobsError",
    "JobError",
    "JobNotFoundError",
    "JobResult",
    "JobState",
    "JobStatus",
    "JobTemplate",
    "RemoteFunction",
    "RemoteStepError",
    "SecretRef",
    "SpecError",
    "StateChange",
    "VertexClient",
    "VertexJob",
    "WorkerPool",
    "__version__",
    "fetch_result",
    "fetch_result_async",
    "load_job_file",
    "remote",
    "run_remote",
    "run_remote_async",
]

if TYPE_CHECKING:
    from gcpjobs.clients.cloudrun import AsyncCloudRunClient, CloudRunClient
    from gcpjobs.clients.vertex import AsyncVertexClient, VertexClient
    from gcpjobs.errors import (
        ApiError,
        GcpJobsError,
        JobNotFoundError,
        RemoteStepError,
        SpecError,
    )
    from gcpjobs.results import JobError, JobResult, JobStatus
    from gcpjobs.specs.cloudrun import CloudRunJob, SecretRef
    from gcpjobs.specs.jobfile import load_job_file
    from gcpjobs.specs.templates import JobTemplate
    from gcpjobs.specs.vertex import VertexJob, WorkerPool
    from gcpjobs.states import JobState
    from gcpjobs.steps.remote import (
        RemoteFunction,
        fetch_result,
        fetch_result_async,
        remote,
        run_remote,
        run_remote_async,
    )
    from gcpjobs.watch.events import StateChange


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gcpjobs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
