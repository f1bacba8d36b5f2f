"""Vertex AI resource names and request sizes, checked before any use (issue 11, findings 5
and 10), through the official JobServiceClient over gRPC and REST.

A malformed name is INVALID_ARGUMENT in every method; a well-formed one that names nothing is
NOT_FOUND; a request over Google's 10 MiB is INVALID_ARGUMENT in Google's words.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from tests.emulator.support import LOCATION, PARENT, custom_job

JOBS_OF = "projects/{project}/locations/" + LOCATION
# Over REST a name is part of the URL: google-api-core itself refuses a `..` segment
# (ValueError) and percent-encodes the rest; over gRPC a name arrives as it is. The raw REST
# corpus (tests/emulator/corpus/test_request_corpus.py) sends `..` to the server itself.
REFUSED_OVER_REST = (exceptions.BadRequest, exceptions.NotFound, ValueError)

BAD_PROJECTS = [
    pytest.param("..", id="dot-dot"),
    pytest.param("gcpjobs\x00test", id="NUL"),
    pytest.param("p" * 300, id="300 characters"),
    pytest.param("Upper-Case-Project", id="upper case"),
    pytest.param("1starts-with-digit", id="starts with a digit"),
    pytest.param("ends-with-hyphen-", id="ends with a hyphen"),
    pytest.param("projé-unicode", id="unicode"),
]


def _refused(client: aiplatform_v1.JobServiceClient) -> Any:
    grpc_transport = "Grpc" in type(client.transport).__name__
    return pytest.raises(exceptions.InvalidArgument if grpc_transport else REFUSED_OVER_REST)


@pytest.mark.parametrize("project", BAD_PROJECTS)
def test_a_malformed_project_is_refused_by_every_method(
    job_client: aiplatform_v1.JobServiceClient, project: str
) -> None:
    parent = JOBS_OF.format(project=project)
    name = f"{parent}/customJobs/123456789012345678"
    with _refused(job_client) as caught:
        job_client.create_custom_job(parent=parent, custom_job=custom_job(["true"]))
    if isinstance(caught.value, exceptions.InvalidArgument | exceptions.BadRequest):
        assert "Invalid project resource name" in caught.value.message
    with _refused(job_client):
        job_client.list_custom_jobs(parent=parent)
    with _refused(job_client):
        job_client.get_custom_job(name=name)
    with _refused(job_client):
        job_client.cancel_custom_job(name=name)
    with _refused(job_client):
        job_client.delete_custom_job(name=name)


def test_project_dot_dot_over_grpc_names_the_rule(grpc_job_client: aiplatform_v1.JobServiceClient) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        grpc_job_client.create_custom_job(parent=JOBS_OF.format(project=".."), custom_job=custom_job())
    message = caught.value.message
    assert message.startswith('Invalid project resource name "projects/..": ')
    assert "6-30 lowercase letters, digits and hyphens" in message


def test_a_300_character_project_gets_a_short_one_line_message(
    grpc_job_client: aiplatform_v1.JobServiceClient,
) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        grpc_job_client.get_custom_job(name=JOBS_OF.format(project="p" * 300) + "/customJobs/1")
    assert len(caught.value.message) < 400 and "\n" not in caught.value.message


def test_project_numbers_and_domain_scoped_ids_are_accepted(
    grpc_job_client: aiplatform_v1.JobServiceClient,
) -> None:
    for project in ("269018079180", "example.com:my-project"):
        listed = grpc_job_client.list_custom_jobs(parent=JOBS_OF.format(project=project))
        assert list(listed) == []


@pytest.mark.parametrize("job_id", [
    pytest.param("not-a-number", id="letters"),
    pytest.param("١٢٣", id="arabic-indic digits"),
    pytest.param("12345678901234567890123", id="23 digits"),
    pytest.param("..", id="dot-dot"),
    pytest.param("12\x003", id="NUL"),
])
def test_a_custom_job_id_that_is_not_a_number_is_refused(
    grpc_job_client: aiplatform_v1.JobServiceClient, job_id: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="CustomJob ids are numbers"):
        grpc_job_client.get_custom_job(name=f"{PARENT}/customJobs/{job_id}")


def test_a_well_formed_name_of_nothing_is_not_found(job_client: aiplatform_v1.JobServiceClient) -> None:
    with pytest.raises(exceptions.NotFound, match=r"The CustomJob does not exist\."):
        job_client.get_custom_job(name=f"{PARENT}/customJobs/123456789012345678")


@pytest.mark.parametrize("location", ["..", "us-central1\x00", "a" * 80 + "-central1", "US-CENTRAL1"])
def test_a_location_that_is_not_a_region_is_refused(
    grpc_job_client: aiplatform_v1.JobServiceClient, location: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="is not a Vertex AI region"):
        grpc_job_client.list_custom_jobs(parent=f"projects/gcpjobs-test/locations/{location}")


@pytest.mark.parametrize("name", [
    f"{PARENT}/operations/..",
    f"{PARENT}/operations/not_an_id!",
    "projects/../locations/us-central1/operations/123",
])
def test_a_malformed_operation_name_is_refused(
    grpc_job_client: aiplatform_v1.JobServiceClient, name: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        grpc_job_client.get_operation(request={"name": name})


def test_a_well_formed_operation_of_nothing_is_not_found(
    grpc_job_client: aiplatform_v1.JobServiceClient,
) -> None:
    with pytest.raises(exceptions.NotFound):
        grpc_job_client.get_operation(request={"name": f"{PARENT}/operations/1234567890"})


# ------------------------------------------------------------------------------------ sizes


def _with_env(variables: dict[str, str]) -> aiplatform_v1.CustomJob:
    return custom_job(["true"], env=variables)


def test_a_40_mb_env_is_refused(job_client: aiplatform_v1.JobServiceClient) -> None:
    # 40 MB is past what either transport reads (32 MiB): gRPC answers RESOURCE_EXHAUSTED
    # itself, REST 413; what matters is that it is refused and no job is created.
    huge = _with_env({f"V{i}": "x" * 400_000 for i in range(100)})
    with pytest.raises(exceptions.GoogleAPICallError):
        job_client.create_custom_job(parent=PARENT, custom_job=huge)
    same_name = f'display_name="{huge.display_name}"'
    assert list(job_client.list_custom_jobs(request={"parent": PARENT, "filter": same_name})) == []


def test_a_request_over_10_mib_is_refused_in_googles_words(
    job_client: aiplatform_v1.JobServiceClient,
) -> None:
    twelve_mib = _with_env({f"V{i}": "x" * 126_000 for i in range(100)})
    with pytest.raises(exceptions.BadRequest) as caught:
        job_client.create_custom_job(parent=PARENT, custom_job=twelve_mib)
    assert caught.value.message.endswith("Request payload size exceeds the limit: 10485760 bytes.")


def test_an_env_too_large_for_a_host_process_is_refused(
    job_client: aiplatform_v1.JobServiceClient,
) -> None:
    # 2 MiB: within the API's 10 MiB, but no process on this host could be started with it.
    large = _with_env({f"V{i}": "x" * 100_000 for i in range(20)})
    with pytest.raises(exceptions.BadRequest) as caught:
        job_client.create_custom_job(parent=PARENT, custom_job=large)
    assert "container_spec.args; Message: The command, args and env come to" in caught.value.message
    assert "1,048,576 bytes in all" in caught.value.message


def test_one_argument_over_the_host_limit_is_refused(grpc_job_client: aiplatform_v1.JobServiceClient) -> None:
    job = custom_job(["echo", "x" * 200_000])
    with pytest.raises(exceptions.InvalidArgument) as caught:
        grpc_job_client.create_custom_job(parent=PARENT, custom_job=job)
    assert "container_spec.command[1]; Message: This argument is 200,000 bytes" in caught.value.message


def test_a_huge_args_list_is_refused(grpc_job_client: aiplatform_v1.JobServiceClient) -> None:
    job = custom_job(["echo"])
    job.job_spec.worker_pool_specs[0].container_spec.args = ["word"] * 300_000
    with pytest.raises(exceptions.InvalidArgument, match="The command, args and env come to"):
        grpc_job_client.create_custom_job(parent=PARENT, custom_job=job)
