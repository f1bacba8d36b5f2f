"""Flows for the gcpjobs Prefect workers example (see README.md beside this file).

Each deployment of these flows runs as one job per flow run: a Vertex AI custom job
(`gcpjobs-vertex` pools) or a Cloud Run execution (`gcpjobs-cloud-run` pools).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from prefect import flow, get_run_logger


@flow(log_prints=True, persist_result=True)
def hello(name: str = "world") -> str:
    """Says hello from inside the job and returns the greeting."""
    print(f"hello {name}, from job {os.environ.get('CLOUD_ML_JOB_ID') or os.environ.get('CLOUD_RUN_EXECUTION')}")
    return f"hello {name}"


@flow
def fails() -> None:
    """Fails on purpose: the flow run ends Failed."""
    get_run_logger().info("about to fail")
    raise RuntimeError("this flow fails on purpose")


@flow
def sleeps(seconds: float = 600.0, pid_file: str = "") -> None:
    """Runs for a long time (to be cancelled); writes its process id first."""
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    get_run_logger().info("sleeping for %s seconds", seconds)
    time.sleep(seconds)
