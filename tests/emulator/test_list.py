"""ListCustomJobs through the official pager: the documented filters, paging, scoping."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.support import PARENT, PROJECT, State, custom_job, unique, wait_until


@dataclass(frozen=True)
class Suite:
    label: str  # every job of the suite carries labels.suite=<label>
    jobs: list[aiplatform_v1.CustomJob]  # final state, in creation order

    def names(self, indexes: list[int]) -> set[str]:
        return {self.jobs[i].name for i in indexes}


# display name, exit code, extra labels
PLAN = [
    ("alpha-1", 0, {"flavor": "x"}),
    ("alpha-2", 1, {}),
    ("beta-1", 0, {"flavor": "y"}),
    ("alpha-3", 0, {}),
    ("beta-2", 2, {"flavor": "x"}),
    ("gamma", 0, {}),
    ("alpha-4", 0, {}),
]


@pytest.fixture(scope="module")
def suite(emulator: EmulatorProcess) -> Iterator[Suite]:
    label = unique("s")
    client = grpc_client(emulator)
    created = [
        client.create_custom_job(
            parent=PARENT,
            custom_job=custom_job(["sh", "-c", f"exit {code}"], display_name=f"{label}-{name}",
                                  labels={"suite": label, **extra}),
        )
        for name, code, extra in PLAN
    ]
    # The same suite label in another region must never show up in us-central1 lists.
    client.create_custom_job(
        parent=f"projects/{PROJECT}/locations/europe-west4",
        custom_job=custom_job(["true"], labels={"suite": label}),
    )
    yield Suite(label, [wait_until(client, job.name) for job in created])
    client.transport.close()


def listed(client: aiplatform_v1.JobServiceClient, filter_text: str, **request: object) -> list[str]:
    pager = client.list_custom_jobs(request={"parent": PARENT, "filter": filter_text, **request})
    return [job.name for job in pager]


def test_label_equality_lists_the_suite_newest_first(
    job_client: aiplatform_v1.JobServiceClient, suite: Suite
) -> None:
    names = listed(job_client, f"labels.suite={suite.label}")
    assert names == [job.name for job in reversed(suite.jobs)]


@pytest.mark.parametrize(
    ("extra_filter", "expected"),
    [
        ("labels.flavor:*", [0, 2, 4]),
        ("labels.flavor=x", [0, 4]),
        ('state="JOB_STATE_FAILED"', [1, 4]),
        ('state!="JOB_STATE_FAILED"', [0, 2, 3, 5, 6]),
        ('display_name:"{label}-alpha*"', [0, 1, 3, 6]),
        ('NOT display_name="{label}-gamma"', [0, 1, 2, 3, 4, 6]),
        ('(display_name="{label}-gamma" OR labels.flavor=y)', [2, 5]),
        ('state="JOB_STATE_SUCCEEDED" AND display_name:"{label}-beta*"', [2]),
    ],
)
def test_documented_filters(
    job_client: aiplatform_v1.JobServiceClient, suite: Suite, extra_filter: str, expected: list[int]
) -> None:
    text = f"labels.suite={suite.label} AND " + extra_filter.replace("{label}", suite.label)
    assert set(listed(job_client, text)) == suite.names(expected)


def test_create_time_comparisons(job_client: aiplatform_v1.JobServiceClient, suite: Suite) -> None:
    pivot = suite.jobs[3].create_time
    stamp = pivot.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    base = f"labels.suite={suite.label}"
    assert set(listed(job_client, f'{base} AND create_time>="{stamp}"')) == suite.names([3, 4, 5, 6])
    assert set(listed(job_client, f'{base} AND create_time<"{stamp}"')) == suite.names([0, 1, 2])


def test_paging_with_the_official_pager(job_client: aiplatform_v1.JobServiceClient, suite: Suite) -> None:
    pager = job_client.list_custom_jobs(
        request={"parent": PARENT, "filter": f"labels.suite={suite.label}", "page_size": 2}
    )
    pages = [[job.name for job in page.custom_jobs] for page in pager.pages]

    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [name for page in pages for name in page] == [job.name for job in reversed(suite.jobs)]


def test_invalid_filter_and_page_token_are_invalid_arguments(
    job_client: aiplatform_v1.JobServiceClient, suite: Suite
) -> None:
    with pytest.raises(exceptions.BadRequest) as caught:
        listed(job_client, "labels.suite=")
    assert "filter" in caught.value.message.lower()

    with pytest.raises(exceptions.BadRequest) as caught:
        listed(job_client, f"labels.suite={suite.label}", page_token="bm90LWEtdG9rZW4")
    assert "page_token" in caught.value.message

    with pytest.raises(exceptions.BadRequest):
        job_client.list_custom_jobs(parent="projects/p/locations/not-a-region")


def test_a_token_from_one_filter_is_refused_for_another(
    grpc_job_client: aiplatform_v1.JobServiceClient, suite: Suite
) -> None:
    first = grpc_job_client.list_custom_jobs(
        request={"parent": PARENT, "filter": f"labels.suite={suite.label}", "page_size": 2}
    )
    token = next(iter(first.pages)).next_page_token
    assert token

    with pytest.raises(exceptions.InvalidArgument):
        listed(grpc_job_client, "labels.flavor:*", page_token=token, page_size=2)


def test_jobs_are_scoped_to_their_region(grpc_job_client: aiplatform_v1.JobServiceClient, suite: Suite) -> None:
    europe = grpc_job_client.list_custom_jobs(
        request={"parent": f"projects/{PROJECT}/locations/europe-west4",
                 "filter": f"labels.suite={suite.label}"}
    )
    jobs = list(europe)
    assert len(jobs) == 1
    assert "/locations/europe-west4/" in jobs[0].name
    assert jobs[0].state in (State.JOB_STATE_QUEUED, State.JOB_STATE_PENDING,
                             State.JOB_STATE_RUNNING, State.JOB_STATE_SUCCEEDED)
