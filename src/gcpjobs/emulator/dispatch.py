"""The API methods the emulator serves, and the one path every call takes: count it, apply an
armed fault, run the service method. gRPC and REST both go through `Dispatcher.call`, so
counters, faults and behaviour are the same whichever transport a client uses."""

from __future__ import annotations

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


def vertex_methods(service: JobService) -> list[Method]:
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
    ]


def cloud_run_methods(service: CloudRunService) -> list[Method]:
    v2 = run_v2
    operation = operations_pb2.Operation
    return [
        Method(RUN_JOBS, "CreateJob", v2.CreateJobRequest, operation, service.create_job),
        Method(RUN_JOBS, "GetJob", v2.GetJobRequest, v2.Job, service.get_job),
        Method(RUN_JOBS, "ListJobs", v2.ListJobsRequest, v2.ListJobsResponse, service.list_jobs),
        Method(RUN_JOBS, "UpdateJob", v2.UpdateJobRequest, operation, service.update_job),
        Method(RUN_JOBS, "DeleteJob", v2.DeleteJobRequest, operation, service.delete_job),
        Method(RUN_JOBS, "RunJob", v2.RunJobRequest, operation, service.run_job),
        Method(RUN_EXECUTIONS, "GetExecution", v2.GetExecutionRequest, v2.Execution,
               service.get_execution),
        Method(RUN_EXECUTIONS, "ListExecutions", v2.ListExecutionsRequest,
               v2.ListExecutionsResponse, service.list_executions),
        Method(RUN_EXECUTIONS, "CancelExecution", v2.CancelExecutionRequest, operation,
               service.cancel_execution),
        Method(RUN_EXECUTIONS, "DeleteExecution", v2.DeleteExecutionRequest, operation,
               service.delete_execution),
        Method(RUN_TASKS, "GetTask", v2.GetTaskRequest, v2.Task, service.get_task),
        Method(RUN_TASKS, "ListTasks", v2.ListTasksRequest, v2.ListTasksResponse,
               service.list_tasks),
    ]


def logging_methods(service: LoggingService) -> list[Method]:
    t = logging_types
    return [
        Method(LOGGING, "ListLogEntries", t.ListLogEntriesRequest, t.ListLogEntriesResponse,
               service.list_log_entries),
        Method(LOGGING, "TailLogEntries", t.TailLogEntriesRequest, t.TailLogEntriesResponse,
               service.tail_log_entries, streaming=True),
    ]


def secret_manager_methods(service: SecretManagerService) -> list[Method]:
    from google.cloud.secretmanager_v1 import types as sm

    return [
        Method(SECRET_MANAGER, "CreateSecret", sm.CreateSecretRequest, sm.Secret,
               service.create_secret),
        Method(SECRET_MANAGER, "GetSecret", sm.GetSecretRequest, sm.Secret, service.get_secret),
        Method(SECRET_MANAGER, "ListSecrets", sm.ListSecretsRequest, sm.ListSecretsResponse,
               service.list_secrets),
        Method(SECRET_MANAGER, "DeleteSecret", sm.DeleteSecretRequest, empty_pb2.Empty,
               service.delete_secret),
        Method(SECRET_MANAGER, "AddSecretVersion", sm.AddSecretVersionRequest, sm.SecretVersion,
               service.add_secret_version),
        Method(SECRET_MANAGER, "AccessSecretVersion", sm.AccessSecretVersionRequest,
               sm.AccessSecretVersionResponse, service.access_secret_version),
    ]


def operation_methods(registry: OperationRegistry) -> list[Method]:
    """One Operations service for all: an operation's name finds it whichever service owns it."""
    pb = operations_pb2
    return [
        Method(OPERATIONS, "GetOperation", pb.GetOperationRequest, pb.Operation,
               registry.get_operation),
        Method(OPERATIONS, "ListOperations", pb.ListOperationsRequest, pb.ListOperationsResponse,
               registry.list_operations),
        Method(OPERATIONS, "WaitOperation", pb.WaitOperationRequest, pb.Operation,
               registry.wait_operation),
        Method(OPERATIONS, "DeleteOperation", pb.DeleteOperationRequest, empty_pb2.Empty,
               registry.delete_operation),
    ]


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
