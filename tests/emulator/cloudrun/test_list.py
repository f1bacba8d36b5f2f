"""ListJobs and ListExecutions: newest first, paged, `-` for every job."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.api_core import exceptions

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import PARENT, create, job, run_clients


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_lists_are_newest_first_and_paged(
    emulator_factory: Callable[..., EmulatorProcess], transport: str
) -> None:
    clients = run_clients(emulator_factory(), transport)
    jobs = [create(clients, job(), f"job-{index}") for index in range(5)]

    listed = list(clients.jobs.list_jobs(parent=PARENT))
    assert [j.name for j in listed] == [j.name for j in reversed(jobs)]

    first = clients.jobs.list_jobs(request={"parent": PARENT, "page_size": 2})
    pages = list(first.pages)
    assert [len(page.jobs) for page in pages] == [2, 2, 1]
    assert [j.name for page in pages for j in page.jobs] == [j.name for j in reversed(jobs)]

    executions = [clients.jobs.run_job(name=jobs[i % 2].name).result(timeout=20) for i in range(4)]
    of_job0 = list(clients.executions.list_executions(parent=jobs[0].name))
    assert [e.name for e in of_job0] == [executions[2].name, executions[0].name]
    everywhere = list(clients.executions.list_executions(
        request={"parent": f"{PARENT}/jobs/-", "page_size": 3}
    ))
    assert [e.name for e in everywhere] == [e.name for e in reversed(executions)]
    assert list(clients.jobs.list_jobs(parent="projects/other-project/locations/us-central1")) == []

    with pytest.raises(exceptions.BadRequest, match="Invalid page_token"):
        clients.jobs.list_jobs(request={"parent": PARENT, "page_token": "forged"})
    clients.close()
