"""Prefect 3 workers for gcpjobs: work pool types `gcpjobs-vertex` and `gcpjobs-cloud-run`.

Prefect imports this module through the `prefect.collections` entry point (see
pyproject.toml) when it looks for worker types, so `pip install 'gcpjobs[prefect]'` is all it
takes for `prefect work-pool create P --type gcpjobs-vertex` and `prefect worker start --pool P`.
"""

from gcpjobs.integrations.prefect.credentials import GcpJobsCredentials
from gcpjobs.integrations.prefect.worker import (
    CloudRunWorker,
    GcpJobsWorkerResult,
    VertexWorker,
)

__all__ = ["CloudRunWorker", "GcpJobsCredentials", "GcpJobsWorkerResult", "VertexWorker"]
