"""Chaos: many jobs submitted, followed and partly cancelled through gcpjobs' async clients
while every API method fails 10 % of the time (lost replies included).

A fifth of the jobs are Cloud Run executions, the rest Vertex custom jobs; a fifth of all jobs,
drawn independently of their kind, are cancelled right after their create returns (with the
default figures and SEED: 51 Cloud Run executions and 149 Vertex jobs, not 40 and 160). Every
job is followed with the shared watcher. Checked afterwards with the OFFICIAL clients, faults
off: exactly one job (Vertex) or one Job and one Execution (Cloud Run) per submission id, so a
lost create reply never makes a second one; every normal job SUCCEEDED; every cancelled one
CANCELLED.

`GCPJOBS_CHAOS_JOBS` sets how many jobs (default 1000: about 10 s on 2 cores). The figures
(jobs, faults injected per kind and method, requests per method, duration) are printed
(`pytest -s` or on failure) and kept in `chaos-figures.json` in the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud import aiplatform_v1, run_v2
from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

from gcpjobs.clients.cloudrun import AsyncCloudRunClient
from gcpjobs.clients.vertex import AsyncVertexClient
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.results import JobResult
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.specs.labels import SUBMISSION_LABEL
from gcpjobs.specs.vertex import VertexJob
from gcpjobs.states import JobState
from gcpjobs.watch.shared import default_watcher
from tests.clients.conftest import PARENT, official_client, target_for, unique_label

JOBS = int(os.environ.get("GCPJOBS_CHAOS_JOBS", "1000"))
CLOUD_RUN_SHARE = 0.2
CANCEL_SHARE = 0.2
FAULT_RATE = 0.10
# Every transient kind, an equal share of the 10 %. permission_denied is left out: it is not
# transient, so a client rightly gives up at once, and the run would only show that.
KINDS = ("unavailable", "reply_lost", "resource_exhausted", "deadline_exceeded", "internal")
CREATE_CONCURRENCY = 50
WAIT_TIMEOUT = 240.0
SEED = 20240611

class Plan:
    """Which job is which: Cloud Run or Vertex, cancelled or not, and its submission id."""

    def __init__(self, jobs: int, label: str, seed: int) -> None:
        rng = random.Random(seed)
        self.label = label
        self.cloud_run = set(rng.sample(range(jobs), round(jobs * CLOUD_RUN_SHARE)))
        self.cancelled = set(rng.sample(range(jobs), round(jobs * CANCEL_SHARE)))
        # Cloud Run names each job after the first 8 characters of the submission id: keep
        # them distinct.
        self.submissions = [f"{index:08d}-{label}" for index in range(jobs)]

    def want(self, index: int) -> JobState:
        return JobState.CANCELLED if index in self.cancelled else JobState.SUCCEEDED

    def command(self, index: int) -> list[str]:
        # Normal jobs run `true`, the cheapest process there is; the ones to cancel sleep, so
        # wherever the cancel lands (QUEUED, PENDING, RUNNING) the job cannot end first.
        return ["sleep", "300"] if index in self.cancelled else ["true"]

    def labels(self, index: int) -> dict[str, str]:
        return {"chaos": self.label, "kind": "cancel" if index in self.cancelled else "normal"}


async def _follow(
    client: AsyncVertexClient | AsyncCloudRunClient,
    job: VertexJob | CloudRunJob,
    submission_id: str,
    cancel: bool,
    gate: asyncio.Semaphore,
) -> JobResult:
    async with gate:  # bounded concurrency for the creates only
        if isinstance(client, AsyncVertexClient):
            assert isinstance(job, VertexJob)
            status = await client.create(job, submission_id=submission_id)
        else:
            assert isinstance(job, CloudRunJob)
            status = await client.create(job, submission_id=submission_id)
    if cancel:
        await client.cancel(status.name)
    return await default_watcher().wait(client, status.name, known=status, timeout=WAIT_TIMEOUT)


def _vertex_jobs(server: EmulatorProcess, label: str) -> list[aiplatform_v1.CustomJob]:
    official = official_client(server)
    try:
        return list(official.list_custom_jobs(request=aiplatform_v1.ListCustomJobsRequest(
            parent=PARENT, filter=f"labels.chaos={label}", page_size=100)))
    finally:
        official.transport.close()


def _cloud_run_records(
    server: EmulatorProcess, label: str
) -> tuple[list[run_v2.Job], list[run_v2.Execution]]:
    channel = grpc.insecure_channel(server.grpc_address)
    try:
        jobs = run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel))
        executions = run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))
        found_jobs = [job for job in jobs.list_jobs(
            request={"parent": PARENT, "page_size": 100})
                      if job.labels.get("chaos") == label]
        found_executions = [
            execution
            for execution in executions.list_executions(
                request={"parent": f"{PARENT}/jobs/-", "page_size": 100})
            if execution.labels.get("chaos") == label
        ]
        return found_jobs, found_executions
    finally:
        channel.close()


def _by_submission(records: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for record in records:
        grouped.setdefault(record.labels[SUBMISSION_LABEL], []).append(record)
    return grouped


def _execution_state(execution: run_v2.Execution) -> str:
    """What the official Execution says happened to its single task."""
    if not execution.completion_time:
        return "UNFINISHED"
    if execution.cancelled_count == execution.task_count:
        return "CANCELLED"
    if execution.succeeded_count == execution.task_count:
        return "SUCCEEDED"
    return f"FAILED({execution.failed_count} failed)"


def _check(
    plan: Plan, results: Sequence[JobResult], vertex: list[aiplatform_v1.CustomJob],
    run_jobs: list[run_v2.Job], executions: list[run_v2.Execution],
) -> list[str]:
    """Every problem found, as lines (none: all is well)."""
    problems: list[str] = []
    groups = {
        "custom job": _by_submission(vertex),
        "Cloud Run job": _by_submission(run_jobs),
        "execution": _by_submission(executions),
    }
    for what, grouped in groups.items():
        problems += [f"{len(found)} {what}s for submission {sid}"
                     for sid, found in grouped.items() if len(found) > 1]
    for index, sid in enumerate(plan.submissions):
        on_cloud_run = index in plan.cloud_run
        want = plan.want(index)
        needed = ("Cloud Run job", "execution") if on_cloud_run else ("custom job",)
        missing = [what for what in needed if sid not in groups[what]]
        if missing:
            problems.append(f"submission {sid}: no {' and no '.join(missing)}")
            continue
        if on_cloud_run:
            record = groups["execution"][sid][0]
            state = _execution_state(record)
        else:
            record = groups["custom job"][sid][0]
            state = record.state.name.removeprefix("JOB_STATE_")
        if state != want.name:
            problems.append(f"submission {sid}: {record.name} is {state}, wanted {want.name}")
        seen = results[index].status
        if seen.name != record.name or seen.state is not want:
            problems.append(f"submission {sid}: the watcher ended with {seen.name} {seen.state}")
    for what, grouped in groups.items():
        unknown = set(grouped) - set(plan.submissions)
        problems += [f"a {what} of no submission: {sid}" for sid in unknown]
    return problems


async def test_jobs_under_ten_percent_faults_on_every_method(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = emulator_factory(cancel_grace_seconds=1.0)
    plan = Plan(JOBS, unique_label(), SEED)
    emulator.set_fault_rates("*", {kind: FAULT_RATE / len(KINDS) for kind in KINDS}, seed=SEED)

    started = time.monotonic()
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)
    target = target_for(emulator)
    async with AsyncVertexClient(target=target) as vertex, \
            AsyncCloudRunClient(target=target) as cloud_run:
        follows = []
        for index, sid in enumerate(plan.submissions):
            cancel = index in plan.cancelled
            client: AsyncVertexClient | AsyncCloudRunClient
            job: VertexJob | CloudRunJob
            if index in plan.cloud_run:
                client = cloud_run
                job = CloudRunJob(name=f"chaos-{index}", image="python:3.11",
                                  command=plan.command(index), labels=plan.labels(index),
                                  max_retries=0)
            else:
                client = vertex
                job = VertexJob(name=f"chaos-{index}", image="python:3.11",
                                command=plan.command(index), labels=plan.labels(index))
            follows.append(_follow(client, job, sid, cancel, gate))
        results = await asyncio.gather(*follows)
        await default_watcher().aclose()
    duration = time.monotonic() - started
    injected: dict[str, dict[str, int]] = emulator.faults()["injected"]
    emulator.clear_faults()
    requests = emulator.stats()["requests"]

    vertex_jobs = _vertex_jobs(emulator, plan.label)
    run_jobs, executions = _cloud_run_records(emulator, plan.label)

    per_kind: Counter[str] = Counter()
    for counts in injected.values():
        per_kind.update(counts)
    figures: dict[str, Any] = {
        "jobs": JOBS,
        "vertex": JOBS - len(plan.cloud_run),
        "cloud_run": len(plan.cloud_run),
        "cancelled": len(plan.cancelled),
        "cancelled_cloud_run": len(plan.cancelled & plan.cloud_run),
        "fault_rate": FAULT_RATE,
        "faults_total": sum(per_kind.values()),
        "faults_by_kind": dict(sorted(per_kind.items())),
        "faults_by_method": injected,
        # Each fault a client met was one failed attempt, then a retry or a lookup.
        "requests": requests,
        "requests_total": sum(requests.values()),
        "duration_seconds": round(duration, 2),
    }
    (tmp_path / "chaos-figures.json").write_text(json.dumps(figures, indent=2))
    with capsys.disabled():
        print("\nchaos figures:", json.dumps(figures))

    problems = _check(plan, results, vertex_jobs, run_jobs, executions)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])
    assert len(vertex_jobs) == JOBS - len(plan.cloud_run)
    assert len(executions) == len(run_jobs) == len(plan.cloud_run)
    # The faults did reach the creates, lost replies included.
    assert injected.get("JobService.CreateCustomJob", {}).get("reply_lost", 0) > 0 or JOBS < 200
    assert per_kind["reply_lost"] > 0
    # Cancels: each cancel() sends its method until one attempt is answered. An injected fault
    # is one failed attempt, and every kind here is transient, so it is followed by exactly one
    # more send: requests = cancels + faults on the method. A lost cancel reply is then retried
    # against a job it may already have stopped (the cancelled ones die at once on SIGTERM):
    # that retry is refused with FAILED_PRECONDITION and cancel() looks the job up
    # (GetExecution / GetCustomJob) to find it CANCELLING or CANCELLED, with no further cancel.
    # The only way below: the emulator counts a reply_lost as injected before running the
    # request, so one drawn for an attempt that is then refused (such a FAILED_PRECONDITION)
    # costs no extra send. Anything above cancels + faults is a cancel sent that needn't be.
    cancels = {
        "Executions.CancelExecution": len(plan.cancelled & plan.cloud_run),
        "JobService.CancelCustomJob": len(plan.cancelled - plan.cloud_run),
    }
    for method, count in cancels.items():
        faults = injected.get(method, {})
        sent = requests.get(method, 0)
        assert count + sum(faults.values()) - faults.get("reply_lost", 0) <= sent \
            <= count + sum(faults.values()), (method, count, faults, sent)
