"""The API methods the emulator serves, and the one path every call takes: count it, apply an
armed fault, run the service method. gRPC and REST both go through `Dispatcher.call`, so
counters, faults and behaviour are the same whichever transport a client uses."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.cloud import aiplatform_v1, run_v2
from google.cloud.logging_v2 import types as logging_types
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from gcpjobs.emulator.cloudrun.service import CloudRunService
from gcpjobs.emulator.faults import FaultRegistry, error_for
from gcpjobs.emulator.logging.service import LoggingService
from gcpjobs.emulator.operations import OperationRegistry
from gcpjobs.emulator.secrets.service import SecretManagerService
from gcpjobs.emulator.stats import RequestStats
from gcpjobs.emulator.vertex.service import JobService

JOB_SERVICE = "google.cloud.aiplatform.v1.JobService"
OPERATIONS = "google.longrunning.Operations"
RUN_JOBS = "google.cloud.run.v2.Jobs"
RUN_EXECUTIONS = "google.cloud.run.v2.Executions"
RUN_TASKS = "google.cloud.run.v2.Tasks"
LOGGING = "google.logging.v2.LoggingServiceV2"
SECRET_MANAGER = "google.cloud.secretmanager.v1.SecretManagerService"


@dataclass(frozen=True)
class Method:
    service: str  # full gRPC service name
    name: str  # "CreateCustomJob"
    request_type: Any  # a proto-plus class or a protobuf class
    response_type: Any
    handler: Callable[[Any], Any]
    streaming: bool = False  # bidi: the handler takes the request iterator, returns an iterator

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


# Bidirectional streams: their handler takes the request iterator and returns an iterator.
_STREAMING = frozenset({"TailLogEntries"})


def _handler_name(method_name: str) -> str:
    """`CreateCustomJob` → `create_custom_job`: each service names its handlers as the gRPC
    method they implement, in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", method_name).lower()


def _method_table(service: str, implementation: object, table: Iterable[tuple[str, Any, Any]]) -> list[Method]:
    """The methods of one gRPC service from (name, request type, response type) rows, each
    handled by `implementation`'s method of that name."""
    return [
        Method(service, name, request_type, response_type,
               getattr(implementation, _handler_name(name)), streaming=name in _STREAMING)
        for name, request_type, response_type in table
    ]


def vertex_methods(service: JobService) -> list[Method]:
    v1 = aiplatform_v1
    return _method_table(JOB_SERVICE, service, [
        ("CreateCustomJob", v1.CreateCustomJobRequest, v1.CustomJob),
        ("GetCustomJob", v1.GetCustomJobRequest, v1.CustomJob),
        ("ListCustomJobs", v1.ListCustomJobsRequest, v1.ListCustomJobsResponse),
        ("CancelCustomJob", v1.CancelCustomJobRequest, empty_pb2.Empty),
        ("DeleteCustomJob", v1.DeleteCustomJobRequest, operations_pb2.Operation),
    ])


def cloud_run_methods(service: CloudRunService) -> list[Method]:
    v2 = run_v2
    operation = operations_pb2.Operation
    return [
        *_method_table(RUN_JOBS, service, [
            ("CreateJob", v2.CreateJobRequest, operation),
            ("GetJob", v2.GetJobRequest, v2.Job),
            ("ListJobs", v2.ListJobsRequest, v2.ListJobsResponse),
            ("UpdateJob", v2.UpdateJobRequest, operation),
            ("DeleteJob", v2.DeleteJobRequest, operation),
            ("RunJob", v2.RunJobRequest, operation),
        ]),
        *_method_table(RUN_EXECUTIONS, service, [
            ("GetExecution", v2.GetExecutionRequest, v2.Execution),
            ("ListExecutions", v2.ListExecutionsRequest, v2.ListExecutionsResponse),
            ("CancelExecution", v2.CancelExecutionRequest, operation),
            ("DeleteExecution", v2.DeleteExecutionRequest, operation),
        ]),
        *_method_table(RUN_TASKS, service, [
            ("GetTask", v2.GetTaskRequest, v2.Task),
            ("ListTasks", v2.ListTasksRequest, v2.ListTasksResponse),
        ]),
    ]


def logging_methods(service: LoggingService) -> list[Method]:
    t = logging_types
    return _method_table(LOGGING, service, [
        ("ListLogEntries", t.ListLogEntriesRequest, t.ListLogEntriesResponse),
        ("TailLogEntries", t.TailLogEntriesRequest, t.TailLogEntriesResponse),
    ])


def secret_manager_methods(service: SecretManagerService) -> list[Method]:
    from google.cloud.secretmanager_v1 import types as sm

    return _method_table(SECRET_MANAGER, service, [
        ("CreateSecret", sm.CreateSecretRequest, sm.Secret),
        ("GetSecret", sm.GetSecretRequest, sm.Secret),
        ("ListSecrets", sm.ListSecretsRequest, sm.ListSecretsResponse),
        ("DeleteSecret", sm.DeleteSecretRequest, empty_pb2.Empty),
        ("AddSecretVersion", sm.AddSecretVersionRequest, sm.SecretVersion),
        ("AccessSecretVersion", sm.AccessSecretVersionRequest, sm.AccessSecretVersionResponse),
    ])


def operation_methods(registry: OperationRegistry) -> list[Method]:
    """One Operations service for all: an operation's name finds it whichever service owns it."""
    pb = operations_pb2
    return _method_table(OPERATIONS, registry, [
        ("GetOperation", pb.GetOperationRequest, pb.Operation),
        ("ListOperations", pb.ListOperationsRequest, pb.ListOperationsResponse),
        ("WaitOperation", pb.WaitOperationRequest, pb.Operation),
        ("DeleteOperation", pb.DeleteOperationRequest, empty_pb2.Empty),
    ])


class Dispatcher:
    def __init__(self, methods: Iterable[Method], stats: RequestStats, faults: FaultRegistry) -> None:
        self.stats = stats
        self.faults = faults
        self.methods = {method.key: method for method in methods}

    def call(self, method: Method, request: Any) -> Any:
        """Run one request; raises ServiceError for refusals and injected faults."""
        self.stats.count(method.key)
        fault = self.faults.take(method.key)
        if fault is not None and not fault.after_work:
            self.faults.count(method.key, fault)
            raise error_for(fault)
        response = method.handler(request)
        if fault is not None:  # reply_lost: the work is done, the client never hears of it
            self.faults.count(method.key, fault)
            raise error_for(fault)
        return response
