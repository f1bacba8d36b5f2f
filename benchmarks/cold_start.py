"""Cold start: from `gcpjobs run` process start to CreateCustomJob received by the emulator.

The emulator stamps `create_time` when it receives the request, so the figure needs no
instrumentation of the CLI: it is `create_time - moment just before the process was spawned`
(both read from this machine's wall clock). Side by side, the floor every Python client pays
(`python -c pass`, `import google.cloud.aiplatform_v1`) and the peer's way (prefect-gcp and the
Vertex SDK import the high-level `google.cloud.aiplatform`).

    .venv/bin/python benchmarks/cold_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import grpc
from google.cloud.aiplatform_v1.services.job_service import JobServiceClient
from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport

from gcpjobs.emulator.process import EmulatorProcess

REPO = Path(__file__).resolve().parent.parent
JOB_FILE = """\
kind: vertex
name: cold-start
image: python:3.11-slim
command: [python, -c, "pass"]
"""
CLOUD_RUN_JOB_FILE = """\
kind: cloud-run
name: cold-start
image: python:3.11-slim
command: [python, -c, "pass"]
"""


def time_command(argv: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, capture_output=True)
        timings.append(time.perf_counter() - start)
    return timings


def time_submissions(emulator: EmulatorProcess, job_file: Path, runs: int) -> list[float]:
    env = {**os.environ, "GCPJOBS_EMULATOR_HOST": emulator.grpc_address}
    gcpjobs = str(Path(sys.executable).with_name("gcpjobs"))
    jobs = JobServiceClient(
        transport=JobServiceGrpcTransport(channel=grpc.insecure_channel(emulator.grpc_address))
    )
    timings = []
    for _ in range(runs):
        spawned = datetime.now().astimezone()
        done = subprocess.run(
            [gcpjobs, "run", "--detach", str(job_file)],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        name = done.stdout.strip().splitlines()[-1]
        received = jobs.get_custom_job(name=name).create_time
        timings.append((received - spawned).total_seconds())
    return timings


def time_first_submissions(job_file: Path, scratch: Path, runs: int) -> list[float]:
    """A new user's first run: no project, no emulator running; gcpjobs starts the embedded
    one in the background, then sends the create."""
    from gcpjobs.emulator.control import read_info, stop_detached

    gcpjobs = str(Path(sys.executable).with_name("gcpjobs"))
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "CLOUDSDK_", "GCLOUD_", "GCPJOBS_"))
    }
    timings = []
    for index in range(runs):
        data_dir = scratch / f"first-{index}"
        env = {**base_env, "GCPJOBS_DATA_DIR": str(data_dir), "HOME": str(scratch)}
        spawned = datetime.now().astimezone()
        done = subprocess.run(
            [gcpjobs, "run", "--detach", str(job_file)],
            check=True, env=env, capture_output=True, text=True,
        )
        name = done.stdout.strip().splitlines()[-1]
        info = read_info(data_dir / "emulator")
        assert info is not None, "the embedded emulator did not record where it listens"
        jobs = JobServiceClient(
            transport=JobServiceGrpcTransport(channel=grpc.insecure_channel(info.grpc_address))
        )
        received = jobs.get_custom_job(name=name).create_time
        jobs.transport.close()
        stop_detached(data_dir / "emulator")
        timings.append((received - spawned).total_seconds())
    return timings


def time_cloud_run_submissions(emulator: EmulatorProcess, job_file: Path, runs: int) -> list[float]:
    """`gcpjobs run --detach` of a Cloud Run job: spawn -> CreateJob received (the job's
    `create_time`; each run makes its own job, as `keep_job: false` does)."""
    from google.cloud import run_v2
    from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

    env = {**os.environ, "GCPJOBS_EMULATOR_HOST": emulator.grpc_address}
    gcpjobs = str(Path(sys.executable).with_name("gcpjobs"))
    jobs = run_v2.JobsClient(
        transport=JobsGrpcTransport(channel=grpc.insecure_channel(emulator.grpc_address))
    )
    timings = []
    for _ in range(runs):
        spawned = datetime.now().astimezone()
        done = subprocess.run(
            [gcpjobs, "run", "--detach", str(job_file)],
            check=True, env=env, capture_output=True, text=True,
        )
        execution = done.stdout.strip().splitlines()[-1]
        received = jobs.get_job(name=execution.split("/executions/")[0]).create_time
        timings.append((received - spawned).total_seconds())
    return timings


def row(label: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"| {label} | {statistics.median(timings):.3f} | {min(timings):.3f} | {p90:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(Path(tmp) / "data") as emulator:
        job_file = Path(tmp) / "job.yaml"
        job_file.write_text(JOB_FILE)
        cloud_run_file = Path(tmp) / "cloud-run.yaml"
        cloud_run_file.write_text(CLOUD_RUN_JOB_FILE)
        results = {
            "`python -c pass`": time_command([python, "-c", "pass"], args.runs),
            "`import google.cloud.aiplatform_v1`": time_command(
                [python, "-c", "import google.cloud.aiplatform_v1"], args.runs
            ),
            "peer: `from google.cloud import aiplatform` (Vertex SDK, prefect-gcp)": time_command(
                [python, "-c", "from google.cloud import aiplatform"], args.runs
            ),
            "**gcpjobs run --detach → CreateCustomJob received**": time_submissions(
                emulator, job_file, args.runs
            ),
            "`gcpjobs run --detach` of a Cloud Run job → CreateJob received": (
                time_cloud_run_submissions(emulator, cloud_run_file, args.runs)
            ),
            "gcpjobs run --detach, first use: starts the embedded emulator, then creates": (
                time_first_submissions(job_file, Path(tmp), args.runs)
            ),
        }
    print(f"cold start, seconds, {args.runs} runs each, {os.cpu_count()} cores")
    print("| what | median | min | p90 |")
    print("|---|---|---|---|")
    for label, timings in results.items():
        print(row(label, timings))


if __name__ == "__main__":
    main()
