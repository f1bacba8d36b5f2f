"""`statuses()`: the state of many jobs in one list call per region, over gRPC and REST.

Checked with the emulator's request counters: running jobs cost one list call per region
(more pages only past the page size), a Get is made only for what the listing did not show
(a Vertex job that has ended, a name that does not exist), and unknown names are left out.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import gcpjobs.clients.vertex as vertex_module
from gcpjobs.clients.cloudrun import AsyncCloudRunClient
from gcpjobs.clients.retry import RetryPolicy
from gcpjobs.clients.vertex import AsyncVertexClient, Transport
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.results import JobStatus
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.specs.vertex import VertexJob
from gcpjobs.states import JobState
from tests.clients.conftest import PARENT, request_counts, target_for, unique_label
from tests.clients.test_state_changes import gated_job_code
from tests.waiting import wait_for_async

QUICK = RetryPolicy(initial=0.01, maximum=0.05, deadline=10.0)
LIST_JOBS, GET_JOB = "JobService.ListCustomJobs", "JobService.GetCustomJob"
LIST_EXECUTIONS, GET_EXECUTION = "Executions.ListExecutions", "Executions.GetExecution"


def delta(after: Mapping[str, Any], before: Mapping[str, Any], method: str) -> int:
    return int(after.get(method, 0)) - int(before.get(method, 0))


def vertex_job(code: str, label: str, region: str = "us-central1") -> VertexJob:
    return VertexJob(name="batch", image="python:3.11", command=[sys.executable, "-c", code],
                     region=region, labels={"suite": label})


async def all_running(client: AsyncVertexClient | AsyncCloudRunClient, names: list[str]) -> bool:
    return all([(await client.get(name)).state is JobState.RUNNING for name in names])


async def test_vertex_lists_once_per_region_and_gets_only_what_the_list_did_not_show(
    emulator: EmulatorProcess, transport: Transport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = tmp_path / "release"
    label = unique_label()
    unknown = f"{PARENT}/customJobs/987654321987654321"
    async with AsyncVertexClient(target=target_for(emulator), transport=transport,
                                 retry=QUICK) as client:
        finished = await client.create(vertex_job("pass", label))
        await client.wait(finished.name, timeout=30)
        try:
            running = [(await client.create(vertex_job(gated_job_code(release), label))).name
                       for _ in range(3)]
            running.append(
                (await client.create(vertex_job(gated_job_code(release), label, "europe-west4"))).name
            )
            await wait_for_async(lambda: all_running(client, running), timeout=30,
                                 message="the gated jobs to run")

            before = request_counts(emulator)
            found = await client.statuses([*running, finished.name, unknown])
            after = request_counts(emulator)

            # Pages of two, newest first: the two newest of us-central1 are on the first page
            # (and the listing stops there); all three need the second one too.
            monkeypatch.setattr(vertex_module, "_STATUS_PAGE_SIZE", 2)
            newest = await client.statuses(running[1:3])
            after_one_page = request_counts(emulator)
            paged = await client.statuses(running[:3])
            after_paging = request_counts(emulator)
        finally:
            release.touch()

    assert set(found) == {*running, finished.name}  # the unknown name is left out
    assert all(found[name].state is JobState.RUNNING and found[name].name == name
               for name in running)
    assert found[finished.name].state is JobState.SUCCEEDED
    assert found[finished.name].end_time is not None
    assert delta(after, before, LIST_JOBS) == 2  # one per region
    assert delta(after, before, GET_JOB) == 2  # the ended job and the unknown one
    assert {name: status.state for name, status in paged.items()} == {
        name: JobState.RUNNING for name in running[:3]
    }
    assert set(newest) == set(running[1:3]) and delta(after_one_page, after, LIST_JOBS) == 1
    assert delta(after_paging, after_one_page, LIST_JOBS) == 2
    assert delta(after_paging, after, GET_JOB) == 0


async def test_vertex_statuses_of_nothing_calls_nothing(emulator: EmulatorProcess) -> None:
    async with AsyncVertexClient(target=target_for(emulator)) as client:
        before = request_counts(emulator)
        assert await client.statuses([]) == {}
        assert request_counts(emulator) == before


def cloud_run_job(code: str, label: str) -> CloudRunJob:
    return CloudRunJob(name="batch", image="python:3.11", command=[sys.executable, "-c", code],
                       labels={"suite": label}, max_retries=0)


async def test_cloud_run_lists_every_job_once_and_gets_only_unseen_names(
    emulator: EmulatorProcess, transport: Transport, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    label = unique_label()
    unknown = f"{PARENT}/jobs/no-such-job/executions/no-such-job-x7k2p"
    async with AsyncCloudRunClient(target=target_for(emulator), transport=transport,
                                   retry=QUICK) as client:
        finished = await client.create(cloud_run_job("import sys; sys.exit(4)", label))
        await client.wait(finished.name, timeout=30)
        running: list[str] = []
        try:
            for _ in range(3):
                running.append((await client.create(cloud_run_job(gated_job_code(release), label))).name)
            await wait_for_async(lambda: all_running(client, running), timeout=30,
                                 message="the gated executions to run")
            before = request_counts(emulator)
            found: dict[str, JobStatus] = await client.statuses([*running, finished.name, unknown])
            after = request_counts(emulator)
        finally:
            release.touch()
            for name in [*running, finished.name]:
                await client.wait(name, timeout=30, delete_job=True)

    assert set(found) == {*running, finished.name}
    assert all(found[name].state is JobState.RUNNING for name in running)
    assert found[finished.name].state is JobState.FAILED and found[finished.name].kind == "cloud-run"
    # The executions are the region's newest: one page shows them all, the ended one too.
    assert delta(after, before, LIST_EXECUTIONS) == 1
    assert delta(after, before, GET_EXECUTION) == 1  # only the unknown name
