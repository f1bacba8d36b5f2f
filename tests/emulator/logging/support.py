"""The OFFICIAL Cloud Logging clients pointed at an emulator: the GAPIC LoggingServiceV2Client
over gRPC, and google-cloud-logging's JSON-over-HTTP client (the REST way; the GAPIC package
ships no REST transport)."""

from __future__ import annotations

from typing import Any

import grpc
from google.auth.credentials import AnonymousCredentials
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.services.logging_service_v2.transports import (
    LoggingServiceV2GrpcTransport,
)

from gcpjobs.emulator.process import EmulatorProcess


def grpc_logging(server: EmulatorProcess) -> LoggingServiceV2Client:
    channel = grpc.insecure_channel(server.grpc_address)
    return LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=channel))


def rest_logging(server: EmulatorProcess, project: str) -> Any:
    from google.cloud import logging as cloud_logging

    return cloud_logging.Client(
        project=project, credentials=AnonymousCredentials(), _use_grpc=False,
        client_options={"api_endpoint": server.rest_endpoint},
    )


def list_texts(client: LoggingServiceV2Client, project: str, filter_: str, **options: Any) -> list[Any]:
    request = {"resource_names": [f"projects/{project}"], "filter": filter_, **options}
    return list(client.list_log_entries(request=request))

