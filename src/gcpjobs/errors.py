"""The exceptions gcpjobs raises to its users.

Every one carries a message that fits on one line and says what is wrong and how to fix it;
the CLI prints exactly that line (and the traceback only with `--debug`).
"""

from __future__ import annotations


class GcpJobsError(Exception):
    """Base of every error gcpjobs raises on purpose."""


class SpecError(GcpJobsError, ValueError):
    """A job description is invalid. Raised before anything is sent.

    `field` is the dotted path of the offending field (`accelerator_count`,
    `extra_worker_pools[0].replica_count`) or `None` for the document as a whole.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)


class JobFileError(SpecError):
    """A job file cannot be read or parsed (missing, not YAML, unknown `kind`)."""


class ApiError(GcpJobsError):
    """The service refused a request, or could not be reached after retries.

    `code` is the gRPC status code name (`INVALID_ARGUMENT`, `PERMISSION_DENIED`,
    `UNAVAILABLE` ...) and `message` the server's own message, unchanged.
    """

    def __init__(self, code: str, message: str, *, method: str | None = None) -> None:
        self.code = code
        self.message = message
        self.method = method
        where = f" ({method})" if method else ""
        super().__init__(f"{code}{where}: {message}")


class JobNotFoundError(ApiError):
    """No job has that name (the server answered NOT_FOUND)."""


class EmulatorError(GcpJobsError):
    """The local emulator could not be started, reached or stopped."""


class RemoteStepError(GcpJobsError):
    """A remote step (a function run as a job) did not return a value, and the reason is not
    an exception that could be re-raised here as itself.

    Either the job ended without an outcome (timed out, preempted, out of memory, cancelled,
    failed before the step started: `state` and `message` say how the service saw it), or the
    function raised an exception that cannot be rebuilt here (`type_name` names its type and
    `remote_traceback` is the traceback from the job). `job_name` is the job's resource name:
    `gcpjobs step result JOB_NAME` fetches the outcome again.
    """

    def __init__(
        self,
        message: str,
        *,
        job_name: str | None = None,
        state: str | None = None,
        type_name: str | None = None,
        remote_traceback: str | None = None,
    ) -> None:
        self.job_name = job_name
        self.state = state
        self.type_name = type_name
        self.remote_traceback = remote_traceback
        super().__init__(message)
