"""Which errors are retried, and how API errors become one-line gcpjobs errors (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as core

from gcpjobs.clients.retry import (
    RetryPolicy,
    call_with_retry,
    error_code_name,
    is_transient,
    server_message,
    to_api_error,
)
from gcpjobs.errors import ApiError, JobNotFoundError

QUICK = RetryPolicy(initial=0.001, maximum=0.002, deadline=5.0)


class FakeHttpResponse:
    """What the REST transport attaches to its errors."""

    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self._body = body

    def json(self) -> Any:
        return self._body


def rest_error(status: int, code: str, message: str) -> core.GoogleAPICallError:
    response = FakeHttpResponse(status, {"error": {"code": status, "message": message, "status": code}})
    error: core.GoogleAPICallError = core.from_http_status(
        status, f"POST http://127.0.0.1:1/v1/x: {message}", response=response
    )
    return error


@pytest.mark.parametrize(
    "error",
    [core.ServiceUnavailable("x"), core.ResourceExhausted("x"), core.TooManyRequests("x"),
     core.DeadlineExceeded("x"), core.GatewayTimeout("x"), core.InternalServerError("x"),
     rest_error(503, "UNAVAILABLE", "down")],
)
def test_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [core.InvalidArgument("x"), core.PermissionDenied("x"), core.NotFound("x"),
     core.FailedPrecondition("x"), core.Unauthenticated("x"), core.AlreadyExists("x"),
     rest_error(400, "FAILED_PRECONDITION", "ended"), ValueError("not an API error")],
)
def test_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_rest_errors_keep_the_grpc_code_name_and_the_bare_server_message() -> None:
    error = rest_error(400, "FAILED_PRECONDITION", 'Cannot cancel CustomJob "x" because it ended.')
    assert error_code_name(error) == "FAILED_PRECONDITION"
    assert server_message(error) == 'Cannot cancel CustomJob "x" because it ended.'


def test_requests_connection_errors_count_as_unavailable() -> None:
    import requests

    assert error_code_name(requests.ConnectionError("refused")) == "UNAVAILABLE"


def test_not_found_becomes_job_not_found_naming_the_job() -> None:
    name = "projects/p/locations/us-central1/customJobs/42"
    error = to_api_error(core.NotFound("The CustomJob does not exist."), "GetCustomJob", name=name)
    assert isinstance(error, JobNotFoundError)
    assert error.code == "NOT_FOUND" and error.method == "GetCustomJob"
    text = str(error)
    assert text.startswith("NOT_FOUND (GetCustomJob): The CustomJob does not exist.")
    assert name in text and "gcpjobs list" in text and "\n" not in text


def test_multi_line_server_messages_become_one_line() -> None:
    error = to_api_error(core.InvalidArgument("List of found errors:\n1.Field: x; Message: y"), "M")
    assert str(error) == "INVALID_ARGUMENT (M): List of found errors: 1.Field: x; Message: y"


async def test_transient_errors_are_retried_until_success() -> None:
    failures = [core.ServiceUnavailable("down"), core.InternalServerError("oops")]
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    assert await call_with_retry(call, QUICK, "GetCustomJob") == "ok"
    assert calls == 3


async def test_permanent_errors_fail_at_once_with_the_server_message() -> None:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        raise core.PermissionDenied("Permission 'aiplatform.customJobs.get' denied")

    with pytest.raises(ApiError) as caught:
        await call_with_retry(call, QUICK, "GetCustomJob")
    assert calls == 1
    assert str(caught.value) == (
        "PERMISSION_DENIED (GetCustomJob): Permission 'aiplatform.customJobs.get' denied"
    )


async def test_retries_stop_at_the_deadline() -> None:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        raise core.ServiceUnavailable("down")

    with pytest.raises(ApiError) as caught:
        await call_with_retry(call, RetryPolicy(initial=0.01, maximum=0.01, deadline=0.1), "ListCustomJobs")
    assert calls >= 2
    assert caught.value.code == "UNAVAILABLE" and "after retries" in str(caught.value)


def test_policy_presets_and_jitter() -> None:
    assert RetryPolicy.for_emulator().initial == 0.2 and RetryPolicy.for_gcp().initial == 1.0
    policy = RetryPolicy(initial=1.0, maximum=4.0)
    sleeps = policy.sleeps()
    delays = [next(sleeps) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert delays[0] <= 1.0 and len(set(delays)) > 100  # jittered, not a fixed ladder


def test_not_found_about_no_job_stays_a_plain_api_error() -> None:
    error = to_api_error(core.NotFound("Project not found."), "CreateCustomJob")
    assert type(error) is ApiError and str(error) == "NOT_FOUND (CreateCustomJob): Project not found."
