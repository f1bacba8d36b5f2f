"""DeleteCustomJob is a long-running operation the official operation future can follow."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from tests.emulator.support import PARENT, State, custom_job, read_pids, wait_until


def test_delete_returns_an_operation_whose_result_works(job_client: aiplatform_v1.JobServiceClient) -> None:
    created = job_client.create_custom_job(parent=PARENT, custom_job=custom_job(["true"]))
    wait_until(job_client, created.name)

    operation = job_client.delete_custom_job(name=created.name)

    assert operation.result(timeout=10) == empty_pb2.Empty()
    assert operation.done()
    assert isinstance(operation.metadata, aiplatform_v1.DeleteOperationMetadata)
    assert operation.metadata.generic_metadata.create_time is not None
    assert operation.operation.name.startswith(f"{PARENT}/operations/")
    with pytest.raises(exceptions.NotFound):
        job_client.get_custom_job(name=created.name)
    with pytest.raises(exceptions.NotFound):
        job_client.delete_custom_job(name=created.name)

    # The operation stays readable through google.longrunning.Operations.
    fetched = job_client.get_operation(
        request=operations_pb2.GetOperationRequest(name=operation.operation.name)
    )
    assert fetched.done and fetched.name == operation.operation.name


def test_a_deleted_job_is_no_longer_listed(grpc_job_client: aiplatform_v1.JobServiceClient) -> None:
    created = grpc_job_client.create_custom_job(
        parent=PARENT, custom_job=custom_job(["true"], labels={"delete-me": "yes"})
    )
    wait_until(grpc_job_client, created.name)
    grpc_job_client.delete_custom_job(name=created.name).result(timeout=10)

    names = [job.name for job in grpc_job_client.list_custom_jobs(
        request={"parent": PARENT, "filter": "labels.delete-me=yes"})]
    assert created.name not in names


def test_deleting_a_running_job_is_a_failed_precondition(
    job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    created = job_client.create_custom_job(
        parent=PARENT,
        custom_job=custom_job(["sh", "-c", 'echo $$ > "$PIDS/root"; exec sleep 300'],
                              env={"PIDS": str(tmp_path)}),
    )
    read_pids(tmp_path, ["root"])
    try:
        with pytest.raises(exceptions.BadRequest) as caught:
            job_client.delete_custom_job(name=created.name)
        assert "cancel it and wait until it has ended" in caught.value.message
        if job_client.transport.kind == "grpc":
            assert isinstance(caught.value, exceptions.FailedPrecondition)
    finally:
        job_client.cancel_custom_job(name=created.name)
    assert wait_until(job_client, created.name).state == State.JOB_STATE_CANCELLED


def test_unknown_operation_is_not_found(job_client: aiplatform_v1.JobServiceClient) -> None:
    with pytest.raises(exceptions.NotFound):
        job_client.get_operation(
            request=operations_pb2.GetOperationRequest(name=f"{PARENT}/operations/123456789")
        )
