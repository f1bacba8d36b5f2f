"""Which API errors are worth retrying, how long to back off, and how errors reach users.

Transient: UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, INTERNAL (and, over REST, a
connection that failed before any answer). Everything else (INVALID_ARGUMENT,
PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION ...) fails at once with the server's message.
Backoff is google-api-core's truncated exponential with full jitter.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from google.api_core import exceptions as core_exceptions
from google.api_core.retry import exponential_sleep_generator
from google.api_core.retry_async import AsyncRetry

from gcpjobs.errors import ApiError, JobNotFoundError

if TYPE_CHECKING:
    from gcpjobs.clients.target import Target

T = TypeVar("T")

TRANSIENT_CODES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "INTERNAL"})
# HTTP statuses of the transient codes, for REST errors that carry no gRPC status.
_TRANSIENT_HTTP = {503: "UNAVAILABLE", 429: "RESOURCE_EXHAUSTED", 504: "DEADLINE_EXCEEDED", 500: "INTERNAL"}
_HTTP_CODE_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    **_TRANSIENT_HTTP,
}


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient errors: sleeps start near `initial` seconds, grow by
    `multiplier` up to `maximum`, each drawn uniformly below the current bound (jitter); no
    new attempt starts after `deadline` seconds. `call_timeout` bounds one attempt."""

    initial: float = 1.0
    maximum: float = 30.0
    multiplier: float = 2.0
    deadline: float = 120.0
    call_timeout: float = 60.0

    @classmethod
    def for_emulator(cls) -> RetryPolicy:
        return cls(initial=0.2)

    @classmethod
    def for_gcp(cls) -> RetryPolicy:
        return cls(initial=1.0)

    @classmethod
    def for_target(cls, target: Target) -> RetryPolicy:
        return cls.for_emulator() if target.is_emulator else cls.for_gcp()

    def sleeps(self) -> Iterator[float]:
        """Jittered backoff delays (google-api-core's generator)."""
        generator: Iterator[float] = exponential_sleep_generator(
            self.initial, self.maximum, self.multiplier
        )
        return generator

    def async_retry(self, on_error: Callable[[Exception], Any] | None = None) -> AsyncRetry:
        """`on_error` is called with each transient error that is about to be retried."""
        return AsyncRetry(
            predicate=is_transient,
            initial=self.initial,
            maximum=self.maximum,
            multiplier=self.multiplier,
            timeout=self.deadline,
            on_error=on_error,
        )


def _rest_error_payload(error: BaseException) -> dict[str, Any]:
    """The `error` object of a REST error reply (`{"error": {"code", "message", "status"}}`)."""
    response = getattr(error, "response", None)
    if response is None or not hasattr(response, "json"):
        return {}
    try:
        payload = response.json()
    except Exception:  # not JSON, or a response object that cannot be read again
        return {}
    inner = payload.get("error") if isinstance(payload, dict) else None
    return inner if isinstance(inner, dict) else {}


def _is_connection_failure(error: BaseException) -> bool:
    """requests' ConnectionError/Timeout: the REST transport's form of UNAVAILABLE."""
    try:
        import requests
    except ImportError:  # pragma: no cover - requests comes with google-auth's REST support
        return False
    return isinstance(error, requests.ConnectionError | requests.Timeout)


def error_code_name(error: BaseException) -> str | None:
    """The gRPC status code name of an API error (`UNAVAILABLE` ...), None if it is none."""
    if isinstance(error, core_exceptions.GoogleAPICallError):
        if error.grpc_status_code is not None:
            return str(error.grpc_status_code.name)
        status = _rest_error_payload(error).get("status")
        if isinstance(status, str) and status:
            return status
        return _HTTP_CODE_NAMES.get(int(error.code or 0), "UNKNOWN")
    if _is_connection_failure(error):
        return "UNAVAILABLE"
    return None


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same request may succeed."""
    return error_code_name(error) in TRANSIENT_CODES


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def server_message(error: BaseException) -> str:
    """The server's own message (REST errors otherwise carry the method and URL in front)."""
    message = _rest_error_payload(error).get("message")
    if isinstance(message, str) and message:
        return _one_line(message)
    if isinstance(error, core_exceptions.GoogleAPICallError):
        return _one_line(str(error.message))
    return _one_line(str(error)) or type(error).__name__


def to_api_error(error: BaseException, method: str, *, name: str | None = None) -> ApiError:
    """The gcpjobs error for a failed call: JobNotFoundError for NOT_FOUND, else ApiError.

    `name` is the job the call was about; a NOT_FOUND for it names it and how to find the
    right one.
    """
    code = error_code_name(error) or "UNKNOWN"
    message = server_message(error)
    if code == "NOT_FOUND" and name:
        about = f" ({name})" if name not in message else ""
        return JobNotFoundError(
            code,
            f"{message}{about} Check the job id, project and region; `gcpjobs list` shows the jobs.",
            method=method,
        )
    if code in TRANSIENT_CODES:
        message = f"{message} (still failing after retries; try again later)"
    return ApiError(code, message, method=method)


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    method: str,
    *,
    name: str | None = None,
    on_error: Callable[[Exception], Any] | None = None,
) -> T:
    """`await call()`, retrying transient errors under `policy`; failures become ApiError."""
    try:
        wrapped = policy.async_retry(on_error)(call)
        result: T = await wrapped()
        return result
    except core_exceptions.RetryError as error:
        raise to_api_error(error.cause or error, method, name=name) from error
    except Exception as error:
        if isinstance(error, core_exceptions.GoogleAPICallError) or _is_connection_failure(error):
            raise to_api_error(error, method, name=name) from error
        raise
