"""ListLogEntries over the jobs' output, with the OFFICIAL clients (gRPC GAPIC, and the JSON
API through google-cloud-logging's HTTP client) against real jobs on the session emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.cloudrun.support import LOCATION, create, run_clients, wait_completed
from tests.emulator.cloudrun.support import job as run_job_spec
from tests.emulator.logging.support import grpc_logging, list_texts, rest_logging
from tests.emulator.support import PARENT, PROJECT, PYTHON, custom_job, pool, wait_until

CODE = (
    "import sys\n"
    "print('out-1', flush=True)\n"
    "print('err-1', file=sys.stderr, flush=True)\n"
    "print('out-2', flush=True)\n"
)
INFO, ERROR, DEFAULT = 200, 500, 0


@pytest.fixture(scope="module")
def logging_client(emulator: EmulatorProcess) -> Iterator[LoggingServiceV2Client]:
    client = grpc_logging(emulator)
    yield client
    client.transport.close()


@pytest.fixture(scope="module")
def vertex_job(emulator: EmulatorProcess) -> str:
    """A finished Vertex job (two replicas) that wrote to stdout and stderr; its id."""
    jobs = grpc_client(emulator)
    # The primary ends the job: it waits until the worker has written its lines.
    primary = CODE + "import glob, os, time\nwhile not any('out-2' in open(p).read() for p in glob.glob('../../logs/workerpool1-0.jsonl')):\n    time.sleep(0.02)\n"
    spec = custom_job([PYTHON, "-c", primary], extra_pools=[pool([PYTHON, "-c", CODE])])
    created = jobs.create_custom_job(parent=PARENT, custom_job=spec)
    finished = wait_until(jobs, created.name)
    assert finished.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED, finished.error
    jobs.transport.close()
    job_id: str = created.name.rsplit("/", 1)[-1]
    return job_id


def _job_filter(job_id: str) -> str:
    return f'resource.type="ml_job" AND resource.labels.job_id="{job_id}"'


def test_vertex_entries_are_shaped_like_the_real_ones(logging_client: LoggingServiceV2Client,
                                                      vertex_job: str) -> None:
    entries = list_texts(logging_client, PROJECT, _job_filter(vertex_job) + ' -logName:"ml.googleapis.com"')
    by_replica: dict[str, list[tuple[str, int]]] = {}
    for entry in entries:
        assert entry.resource.type == "ml_job"
        assert entry.resource.labels["job_id"] == vertex_job
        assert entry.resource.labels["project_id"] == PROJECT
        replica = entry.resource.labels["task_name"]
        assert entry.log_name == f"projects/{PROJECT}/logs/{replica}"
        by_replica.setdefault(replica, []).append((entry.text_payload, entry.severity))
    assert set(by_replica) == {"workerpool0-0", "workerpool1-0"}
    for lines in by_replica.values():
        job_lines = [line for line in lines if line[0] in ("out-1", "err-1", "out-2")]
        # stdout and stderr are separate pipes: each keeps its order, not their interleaving
        assert [line for line in job_lines if line[1] == INFO] == [("out-1", INFO), ("out-2", INFO)]
        assert [line for line in job_lines if line[1] != INFO] == [("err-1", ERROR)]
    insert_ids = [entry.insert_id for entry in entries]
    assert len(set(insert_ids)) == len(insert_ids)
    times = [entry.timestamp for entry in entries]
    assert times == sorted(times)
    # Stable: a second read gives the same ids for the same lines.
    again = list_texts(logging_client, PROJECT, _job_filter(vertex_job) + ' -logName:"ml.googleapis.com"')
    assert [(e.insert_id, e.text_payload) for e in again] == [(e.insert_id, e.text_payload) for e in entries]


def test_the_emulators_notes_are_in_the_service_log(logging_client: LoggingServiceV2Client,
                                                    vertex_job: str) -> None:
    notes = list_texts(logging_client, PROJECT,
                       _job_filter(vertex_job) + ' resource.labels.task_name="service"')
    assert notes
    assert all(n.log_name == f"projects/{PROJECT}/logs/ml.googleapis.com%2F{vertex_job}" for n in notes)


def test_severity_order_and_paging(logging_client: LoggingServiceV2Client, vertex_job: str) -> None:
    errors = list_texts(logging_client, PROJECT, _job_filter(vertex_job) + " severity>=ERROR")
    assert [e.text_payload for e in errors] == ["err-1", "err-1"]
    everything = list_texts(logging_client, PROJECT, _job_filter(vertex_job))
    newest_first = list_texts(logging_client, PROJECT, _job_filter(vertex_job), order_by="timestamp desc")
    assert [e.timestamp for e in newest_first] == sorted((e.timestamp for e in everything), reverse=True)
    assert {e.insert_id for e in newest_first} == {e.insert_id for e in everything}
    pager = logging_client.list_log_entries(request={
        "resource_names": [f"projects/{PROJECT}"], "filter": _job_filter(vertex_job), "page_size": 2})
    pages = list(pager.pages)
    assert len(pages) == (len(everything) + 1) // 2
    assert [e.insert_id for page in pages for e in page.entries] == [e.insert_id for e in everything]


def test_timestamp_and_insert_id_cursors(logging_client: LoggingServiceV2Client, vertex_job: str) -> None:
    everything = list_texts(logging_client, PROJECT, _job_filter(vertex_job))
    middle = everything[len(everything) // 2]
    stamp = middle.timestamp.isoformat().replace("+00:00", "Z")
    later = list_texts(logging_client, PROJECT, _job_filter(vertex_job) + f' timestamp>"{stamp}"')
    at_or_later = list_texts(logging_client, PROJECT, _job_filter(vertex_job) + f' timestamp>="{stamp}"')
    assert [e.insert_id for e in later] == [e.insert_id for e in everything if e.timestamp > middle.timestamp]
    assert [e.insert_id for e in at_or_later] == [
        e.insert_id for e in everything if e.timestamp >= middle.timestamp]
    one = list_texts(logging_client, PROJECT, f'insertId="{middle.insert_id}"')
    assert [e.text_payload for e in one] == [middle.text_payload]


def test_other_projects_and_jobs_see_nothing(logging_client: LoggingServiceV2Client, vertex_job: str) -> None:
    assert list_texts(logging_client, "another-project", _job_filter(vertex_job)) == []
    assert list_texts(logging_client, PROJECT, 'resource.labels.job_id="1"') == []


@pytest.mark.parametrize(("filter_", "fragment"), [
    ('resource.type="ml_job" AND (', "Invalid filter"),
    ('severity>=LOUD', "Invalid severity"),
    ('timestamp>="yesterday"', "Invalid timestamp"),
])
def test_bad_filters_are_invalid_argument(logging_client: LoggingServiceV2Client, filter_: str,
                                          fragment: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=fragment):
        list_texts(logging_client, PROJECT, filter_)


def test_resource_names_and_order_are_checked(logging_client: LoggingServiceV2Client) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="resource_names is required"):
        list(logging_client.list_log_entries(request={"filter": ""}))
    with pytest.raises(exceptions.InvalidArgument, match="order_by"):
        list_texts(logging_client, PROJECT, "", order_by="severity")


def test_rest_json_api(emulator: EmulatorProcess, vertex_job: str) -> None:
    client = rest_logging(emulator, PROJECT)
    entries = list(client.list_entries(
        resource_names=[f"projects/{PROJECT}"], filter_=_job_filter(vertex_job) + " severity>=ERROR",
        page_size=1))
    assert [e.payload for e in entries] == ["err-1", "err-1"]
    assert {e.resource.labels["task_name"] for e in entries} == {"workerpool0-0", "workerpool1-0"}
    assert all(e.severity == "ERROR" and e.insert_id for e in entries)
    with pytest.raises(exceptions.BadRequest, match="Invalid filter"):
        list(client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_="(("))


def test_cloud_run_entries(emulator: EmulatorProcess, logging_client: LoggingServiceV2Client) -> None:
    clients = run_clients(emulator, "grpc")
    code = ("import os, sys\n"
            "i = os.environ['CLOUD_RUN_TASK_INDEX']\n"
            "print('task', i, flush=True)\n"
            "print('oops', i, file=sys.stderr, flush=True)\n")
    try:
        job = create(clients, run_job_spec([PYTHON, "-c", code], task_count=2))
        execution = clients.jobs.run_job(name=job.name).metadata
        wait_completed(clients, execution.name)
    finally:
        clients.close()
    job_name = job.name.rsplit("/", 1)[-1]
    execution_id = execution.name.rsplit("/", 1)[-1]
    base = (f'resource.type = "cloud_run_job" resource.labels.job_name = "{job_name}" '
            f'labels."run.googleapis.com/execution_name" = "{execution_id}" '
            f'resource.labels.location = "{LOCATION}"')
    entries = list_texts(logging_client, PROJECT, base + ' NOT logName:"varlog"')
    lines = {(e.labels["run.googleapis.com/task_index"], e.text_payload, e.severity,
              e.log_name.rsplit("%2F", 1)[-1]) for e in entries
             if e.text_payload.startswith(("task", "oops"))}
    assert lines == {("0", "task 0", DEFAULT, "stdout"), ("0", "oops 0", ERROR, "stderr"),
                     ("1", "task 1", DEFAULT, "stdout"), ("1", "oops 1", ERROR, "stderr")}
    assert all(e.resource.labels["job_name"] == job_name and e.resource.labels["location"] == LOCATION
               and e.labels["run.googleapis.com/task_attempt"] == "0" for e in entries)
    task_one = list_texts(logging_client, PROJECT, base + ' labels."run.googleapis.com/task_index"="1" '
                          'severity>=ERROR')
    assert [e.text_payload for e in task_one] == ["oops 1"]
    system = list_texts(logging_client, PROJECT, base + ' logName:"varlog%2Fsystem"')
    assert system and all("run.googleapis.com/task_index" not in e.labels or e.text_payload for e in system)
