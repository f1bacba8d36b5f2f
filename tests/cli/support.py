"""Helpers for the CLI tests: run `gcpjobs` (in this process, or as a real one), write job
files, check errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from tests.cli.inprocess import GCPJOBS, gcpjobs_inprocess

__all__ = ["GCPJOBS", "assert_one_line_error", "clean_env", "gcpjobs", "gcpjobs_process",
           "job_file", "python_job"]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that would point gcpjobs at real GCP."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "CLOUDSDK_", "GCLOUD_", "GCPJOBS_"))
    }
    env.update(extra)
    return env


# What most tests run: the command line, in this process (see tests/cli/inprocess.py).
gcpjobs = gcpjobs_inprocess


def gcpjobs_process(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real console script as a process of its own: for what only a process shows."""
    return subprocess.run(
        [GCPJOBS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def job_file(tmp_path: Path, body: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def python_job(tmp_path: Path, code: str, *, kind: str = "vertex", **fields: object) -> Path:
    """A job file whose job runs `code` with this interpreter."""
    document = {
        "kind": kind,
        "name": "cli-test",
        "image": "python:3.11-slim",
        "command": [sys.executable, "-c", code],
        **fields,
    }
    return job_file(tmp_path, yaml.safe_dump(document), name=f"{kind}-job.yaml")


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    # The `target: ...` line that commands print before sending anything is not the error.
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith("target: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
