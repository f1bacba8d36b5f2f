"""The one error type the emulator's service logic raises; transports turn it into a gRPC
status or a Google JSON error, so both speak the same code and message."""

from __future__ import annotations

import grpc
from google.api_core import exceptions as api_exceptions


class ServiceError(Exception):
    """A request the service refuses, with the gRPC code and the message the client will see."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ServiceError({self.code.name}, {self.message!r})"


def invalid(message: str) -> ServiceError:
    """INVALID_ARGUMENT: the refusal of most requests the services turn down."""
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message)


def internal_message(error: BaseException) -> str:
    """What a client is told when a request fails on the emulator's own bug (logged apart)."""
    return f"Internal error in the gcpjobs emulator: {error}"


def http_status_for(code: grpc.StatusCode) -> int:
    """The HTTP status Google's REST front end uses for a gRPC code (google-api-core maps it
    back to the same exception family on the client side)."""
    exception_class = api_exceptions.exception_class_for_grpc_status(code)
    status = getattr(exception_class, "code", None)
    return int(status) if isinstance(status, int) else 500
