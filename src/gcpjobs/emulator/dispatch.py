"""The API methods the emulator serves, and the one path every call takes: count it, apply an
armed fault, run the service method. gRPC and REST both go through `Dispatcher.call`, so
counters, faults and behaviour are the same whichever transport a client uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.cloud import aiplatform_v1
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from gcpjobs.emulator.faults import FaultRegistry, error_for
from gcpjobs.emulator.stats import RequestStats
from gcpjobs.emulator.vertex.service import JobService

JOB_SERVICE = "google.cloud.aiplatform.v1.JobService"
OPERATIONS = "google.longrunning.Operations"


@dataclass(frozen=True)
class Method:
    service: str  # full gRPC service name
    name: str  # "CreateCustomJob"
    request_type: Any  # a proto-plus class or a protobuf class
    response_type: Any
    handler: Callable[[Any], Any]

    @property
    def key(self) -> str:
        """`JobService.CreateCustomJob`: the name used by stats and faults."""
        return f"{self.service.rsplit('.', 1)[-1]}.{self.name}"

    def deserialize(self, data: bytes) -> Any:
        if hasattr(self.request_type, "deserialize"):
            return self.request_type.deserialize(data)
        return self.request_type.FromString(data)

    def serialize(self, message: Any) -> bytes:
        if hasattr(self.response_type, "serialize"):
            data: bytes = self.response_type.serialize(message)
            return data
        return bytes(message.SerializeToString())


def methods_of(service: JobService) -> list[Method]:
    v1 = aiplatform_v1
    return [
        Method(JOB_SERVICE, "CreateCustomJob", v1.CreateCustomJobRequest, v1.CustomJob,
               service.create_custom_job),
        Method(JOB_SERVICE, "GetCustomJob", v1.GetCustomJobRequest, v1.CustomJob,
               service.get_custom_job),
        Method(JOB_SERVICE, "ListCustomJobs", v1.ListCustomJobsRequest,
               v1.ListCustomJobsResponse, service.list_custom_jobs),
        Method(JOB_SERVICE, "CancelCustomJob", v1.CancelCustomJobRequest, empty_pb2.Empty,
               service.cancel_custom_job),
        Method(JOB_SERVICE, "DeleteCustomJob", v1.DeleteCustomJobRequest,
               operations_pb2.Operation, service.delete_custom_job),
        Method(OPERATIONS, "GetOperation", operations_pb2.GetOperationRequest,
               operations_pb2.Operation, service.get_operation),
        Method(OPERATIONS, "ListOperations", operations_pb2.ListOperationsRequest,
               operations_pb2.ListOperationsResponse, service.list_operations),
    ]


class Dispatcher:
    def __init__(self, service: JobService, stats: RequestStats, faults: FaultRegistry) -> None:
        self.service = service
        self.stats = stats
        self.faults = faults
        self.methods = {method.key: method for method in methods_of(service)}

    def call(self, method: Method, request: Any) -> Any:
        """Run one request; raises ServiceError for refusals and injected faults."""
        self.stats.count(method.key)
        fault = self.faults.take(method.key)
        if fault is not None and not fault.after_work:
            raise error_for(fault)
        response = method.handler(request)
        if fault is not None:  # reply_lost: the work is done, the client never hears of it
            raise error_for(fault)
        return response
