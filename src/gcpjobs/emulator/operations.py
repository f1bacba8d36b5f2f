"""`google.longrunning.Operations` for every service the emulator serves.

Vertex (DeleteCustomJob) and Cloud Run (CreateJob, RunJob, CancelExecution, ...) both name
their operations `projects/P/locations/L/operations/ID`, and a client asks one
`google.longrunning.Operations` service about either, so operations live in one registry:
each service writes its operations here (into the SQLite store, so they survive restarts) and
updates them when they finish; `GetOperation` and `WaitOperation` read them whoever owns them.

`WaitOperation` blocks until the operation is done or its `timeout` passes (then it returns the
operation as it is, not done, as AIP-151 says); without a timeout it waits at most
`MAX_WAIT_SECONDS`, so a forgotten wait cannot hold a server thread for ever.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import grpc
import proto
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.message import Message as RawMessage

from gcpjobs.emulator import names, paging
from gcpjobs.emulator.clock import rfc3339
from gcpjobs.emulator.errors import ServiceError, invalid
from gcpjobs.emulator.messages import pack
from gcpjobs.emulator.store import JobStore

MAX_WAIT_SECONDS = 60.0
_SERVICE = "Google Cloud"  # operations are shared: "Location ... is not a Google Cloud region"


def new_operation(
    project: str,
    location: str,
    operation_id: str,
    metadata: proto.Message | RawMessage,
    response: proto.Message | RawMessage | None = None,
) -> operations_pb2.Operation:
    """An operation named as both services name theirs; given a `response`, it is done."""
    operation = operations_pb2.Operation(
        name=f"projects/{project}/locations/{location}/operations/{operation_id}",
        metadata=pack(metadata),
    )
    if response is not None:
        operation.done = True
        operation.response.CopyFrom(pack(response))
    return operation


class OperationRegistry:
    """Operations by name, written through to the store; waiters wake when one changes."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._changed = threading.Condition()

    def put(self, operation: operations_pb2.Operation, create_time: datetime) -> None:
        """Record a new or updated operation (the first call's time orders ListOperations)."""
        with self._changed:
            self._store.put_operation(
                operation.name, rfc3339(create_time), operation.SerializeToString()
            )
            self._changed.notify_all()

    def find(self, name: str) -> operations_pb2.Operation | None:
        raw = self._store.get_operation(name)
        return operations_pb2.Operation.FromString(raw) if raw is not None else None

    def unfinished(self) -> list[operations_pb2.Operation]:
        """Every operation not yet done, whoever owns it (read back after a restart)."""
        found = (operations_pb2.Operation.FromString(raw) for raw in self._store.list_operations(""))
        return [operation for operation in found if not operation.done]

    # --------------------------------------------------------------- google.longrunning.Operations

    def get_operation(self, request: operations_pb2.GetOperationRequest) -> operations_pb2.Operation:
        project, location, operation_id = names.split_name(
            request.name, ("projects", "locations", "operations"), what="operation name",
            pattern="projects/{project}/locations/{location}/operations/{operation}",
        )
        names.check_project_and_location(project, location, service=_SERVICE)
        names.check_operation_id(operation_id)
        operation = self.find(request.name)
        if operation is None:
            raise ServiceError(grpc.StatusCode.NOT_FOUND, "The Operation does not exist.")
        return operation

    def wait_operation(self, request: operations_pb2.WaitOperationRequest) -> operations_pb2.Operation:
        seconds = MAX_WAIT_SECONDS
        if request.HasField("timeout"):
            seconds = min(max(request.timeout.ToTimedelta().total_seconds(), 0.0), MAX_WAIT_SECONDS)
        deadline = time.monotonic() + seconds
        operation = self.get_operation(operations_pb2.GetOperationRequest(name=request.name))
        with self._changed:
            while not operation.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
                operation = self.get_operation(operations_pb2.GetOperationRequest(name=request.name))
        return operation

    def list_operations(
        self, request: operations_pb2.ListOperationsRequest
    ) -> operations_pb2.ListOperationsResponse:
        names.location_name(request.name, service=_SERVICE, what="operations parent")
        found = [
            operations_pb2.Operation.FromString(raw)
            for raw in self._store.list_operations(request.name + "/operations/")
        ]
        # Paged like every other list: a garbage page_token or a negative page_size used to be
        # ignored (200 with everything) instead of INVALID_ARGUMENT. The filter is not applied
        # (the emulator's operations are few), but a token stays bound to it.
        try:
            page = paging.page_of(found, page_size=request.page_size, page_token=request.page_token,
                                  filter_text=request.filter, scope=f"Operations|{request.name}")
        except (paging.InvalidPageToken, paging.InvalidPageSize) as error:
            raise invalid(str(error)) from None
        return operations_pb2.ListOperationsResponse(operations=page.items,
                                                     next_page_token=page.next_page_token)

    def delete_operation(self, request: operations_pb2.DeleteOperationRequest) -> empty_pb2.Empty:
        self.get_operation(operations_pb2.GetOperationRequest(name=request.name))
        self._store.delete_operation(request.name)
        return empty_pb2.Empty()
