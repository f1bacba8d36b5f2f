"""Cloud Run resource names, checked before any use (issue 11, finding 5), through the official
`run_v2` Jobs, Executions and Tasks clients over gRPC and REST.

A malformed project, location, job id or execution id is INVALID_ARGUMENT in every method; a
well-formed name of nothing is NOT_FOUND in Cloud Run's words; and a job under project or
location `..` (which once made an execution write its directory outside DATA_DIR) is refused
before anything is created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from google.cloud.run_v2.services.tasks.transports import TasksGrpcTransport

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.cloudrun.support import LOCATION, PARENT, PROJECT, RunClients, job, job_id

# Over REST a name is part of the URL: google-api-core refuses a name that does not match the
# method's path template (`..`, a '/' in an id) with ValueError before sending anything, and
# percent-encodes the rest; over gRPC a name arrives as it is. The raw REST corpus
# (tests/emulator/corpus/test_request_corpus.py) sends `..` to the server itself.
REFUSED_OVER_REST = (exceptions.BadRequest, ValueError)

BAD_PROJECTS = [
    pytest.param("..", id="dot-dot"),
    pytest.param("gcpjobs\x00test", id="NUL"),
    pytest.param("p" * 300, id="300 characters"),
    pytest.param("Upper-Case-Project", id="upper case"),
    pytest.param("projé-unicode", id="unicode"),
]
BAD_LOCATIONS = [pytest.param("..", id="dot-dot"), pytest.param("not-a-region", id="not a region")]
BAD_JOB_IDS = [
    pytest.param("..", id="dot-dot"),
    pytest.param("UPPER", id="upper case"),
    pytest.param("j" * 64, id="64 characters"),
]
BAD_EXECUTION_IDS = [
    pytest.param("..", id="dot-dot"),
    pytest.param("UPPER-abcde", id="upper case"),
    pytest.param("e" * 71, id="71 characters"),
    pytest.param("exec_abcde", id="underscore"),
]


@pytest.fixture()
def tasks(run: RunClients, emulator: EmulatorProcess) -> Iterator[run_v2.TasksClient]:
    """The official TasksClient over the same transport as `run`."""
    if run.transport == "grpc":
        client = run_v2.TasksClient(
            transport=TasksGrpcTransport(channel=grpc.insecure_channel(emulator.grpc_address)))
    else:
        client = run_v2.TasksClient(transport="rest", credentials=AnonymousCredentials(),
                                    client_options={"api_endpoint": emulator.rest_endpoint})
    yield client
    client.transport.close()


def _refused(clients: RunClients) -> Any:
    return pytest.raises(exceptions.InvalidArgument if clients.transport == "grpc"
                         else REFUSED_OVER_REST)


def _every_method(clients: RunClients, tasks: run_v2.TasksClient, parent: str,
                  job_name: str, execution: str) -> list[tuple[str, Callable[[], object]]]:
    """(method, call) for every Jobs, Executions and Tasks method that takes a name."""
    task = f"{execution}/tasks/{execution.rsplit('/', 1)[-1]}-task0"
    return [
        ("CreateJob", lambda: clients.jobs.create_job(parent=parent, job=job(), job_id=job_id())),
        ("ListJobs", lambda: list(clients.jobs.list_jobs(parent=parent))),
        ("GetJob", lambda: clients.jobs.get_job(name=job_name)),
        ("RunJob", lambda: clients.jobs.run_job(name=job_name)),
        ("DeleteJob", lambda: clients.jobs.delete_job(name=job_name)),
        ("ListExecutions", lambda: list(clients.executions.list_executions(parent=job_name))),
        ("GetExecution", lambda: clients.executions.get_execution(name=execution)),
        ("CancelExecution", lambda: clients.executions.cancel_execution(name=execution)),
        ("DeleteExecution", lambda: clients.executions.delete_execution(name=execution)),
        ("ListTasks", lambda: list(tasks.list_tasks(parent=execution))),
        ("GetTask", lambda: tasks.get_task(name=task)),
    ]


def _server_words(clients: RunClients, error: exceptions.GoogleAPICallError) -> str:
    """The server's message (google-api-core puts "METHOD URL: " before it over REST)."""
    message = error.message
    return message.split(": ", 1)[1] if clients.transport == "rest" else message


def _assert_all_refused(clients: RunClients, calls: list[tuple[str, Callable[[], object]]],
                        fragment: str) -> None:
    for method, send in calls:
        with _refused(clients) as caught:
            send()
        error = caught.value
        if not isinstance(error, ValueError):
            words = _server_words(clients, error)
            assert fragment in words, (method, words)
            assert "\n" not in words and len(words) < 600, (method, words)


@pytest.mark.parametrize("project", BAD_PROJECTS)
def test_a_malformed_project_is_refused_by_every_method(
    run: RunClients, tasks: run_v2.TasksClient, project: str
) -> None:
    parent = f"projects/{project}/locations/{LOCATION}"
    calls = _every_method(run, tasks, parent, f"{parent}/jobs/a-job",
                          f"{parent}/jobs/a-job/executions/a-job-abcde")
    _assert_all_refused(run, calls, "Invalid project resource name")


@pytest.mark.parametrize("location", BAD_LOCATIONS)
def test_a_location_that_is_not_a_region_is_refused_by_every_method(
    run: RunClients, tasks: run_v2.TasksClient, location: str
) -> None:
    parent = f"projects/{PROJECT}/locations/{location}"
    calls = _every_method(run, tasks, parent, f"{parent}/jobs/a-job",
                          f"{parent}/jobs/a-job/executions/a-job-abcde")
    _assert_all_refused(run, calls, "is not a Cloud Run region")


@pytest.mark.parametrize("bad_id", BAD_JOB_IDS)
def test_a_malformed_job_id_is_refused_by_every_method(
    run: RunClients, tasks: run_v2.TasksClient, bad_id: str
) -> None:
    name = f"{PARENT}/jobs/{bad_id}"
    # CreateJob takes the id as `job_id` (a query parameter over REST: sent as it is).
    with pytest.raises(exceptions.InvalidArgument if run.transport == "grpc"
                       else exceptions.BadRequest) as caught:
        run.jobs.create_job(parent=PARENT, job=job(), job_id=bad_id)
    assert "Invalid job id" in caught.value.message
    assert "at most 63 characters" in caught.value.message
    calls = _every_method(run, tasks, PARENT, name, f"{name}/executions/a-job-abcde")[2:]
    _assert_all_refused(run, calls, "Invalid job id")


def test_a_job_id_with_a_slash_is_refused_over_grpc(grpc_run: RunClients) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="Invalid job id"):
        grpc_run.jobs.create_job(parent=PARENT, job=job(), job_id="a/b")
    for send in (lambda: grpc_run.jobs.get_job(name=f"{PARENT}/jobs/a/b"),
                 lambda: grpc_run.jobs.run_job(name=f"{PARENT}/jobs/a/b"),
                 lambda: grpc_run.jobs.delete_job(name=f"{PARENT}/jobs/a/b")):
        # `.../jobs/a/b` has one segment too many: not a job name at all.
        with pytest.raises(exceptions.InvalidArgument, match="Invalid job name"):
            send()


@pytest.mark.parametrize("bad_id", BAD_EXECUTION_IDS)
def test_a_malformed_execution_id_is_refused_by_every_method(
    run: RunClients, tasks: run_v2.TasksClient, bad_id: str
) -> None:
    execution = f"{PARENT}/jobs/a-job/executions/{bad_id}"
    calls = _every_method(run, tasks, PARENT, f"{PARENT}/jobs/a-job", execution)[6:]
    _assert_all_refused(run, calls, "Invalid execution id")


def test_a_well_formed_name_of_nothing_is_not_found(
    run: RunClients, tasks: run_v2.TasksClient
) -> None:
    missing = job_id("missing")
    name = f"{PARENT}/jobs/{missing}"
    execution = f"{name}/executions/{missing}-abcde"
    job_words = f"Resource '{missing}' of kind 'JOB' in region '{LOCATION}' in project '{PROJECT}' does not exist."
    execution_words = (f"Resource '{missing}-abcde' of kind 'EXECUTION' in region '{LOCATION}' in "
                       f"project '{PROJECT}' does not exist.")
    for method, send in _every_method(run, tasks, PARENT, name, execution):
        if method in ("CreateJob", "ListJobs", "ListExecutions"):
            continue  # a parent that exists, or a listing of nothing: not an error
        with pytest.raises(exceptions.NotFound) as caught:
            send()
        expected = job_words if method.endswith("Job") else execution_words
        assert _server_words(run, caught.value) == expected, (method, caught.value.message)


# ------------------------------------------------------------ nothing outside the data dir


def _listing(directory: Path) -> set[str]:
    return {entry.name for entry in directory.iterdir()}


@pytest.mark.parametrize(("project", "location"), [
    pytest.param("..", "..", id="project and location"),
    pytest.param("..", LOCATION, id="project"),
    pytest.param(PROJECT, "..", id="location"),
])
def test_a_job_under_dot_dot_is_refused_and_nothing_is_created_outside_the_data_dir(
    grpc_run: RunClients, emulator: EmulatorProcess, project: str, location: str
) -> None:
    """The original finding: a job created under `projects/../locations/..` and run wrote its
    execution's directory to DATA_DIR/executions/../../EXECUTION, beside DATA_DIR."""
    outside = emulator.data_dir.parent
    before = _listing(outside)
    parent = f"projects/{project}/locations/{location}"
    name = job_id("escape")
    with pytest.raises(exceptions.InvalidArgument):
        grpc_run.jobs.create_job(parent=parent, job=job(["true"]), job_id=name).result(timeout=10)
    with pytest.raises(exceptions.InvalidArgument):
        grpc_run.jobs.run_job(name=f"{parent}/jobs/{name}").result(timeout=10)
    assert _listing(outside) - before == set()
