"""One-shot fault injection for API methods (`POST /_emulator/faults`).

A fault is armed for the next N calls of one method (`JobService.CreateCustomJob`). Most faults
refuse the call before any work is done; `reply_lost` does the work and then answers
UNAVAILABLE, as a reply dropped on the network would look to the client. Issue 6 extends this
registry with rates and latency; keep it a small table.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

from gcpjobs.emulator.errors import ServiceError


@dataclass(frozen=True)
class FaultKind:
    name: str
    code: grpc.StatusCode
    message: str
    after_work: bool = False  # True: the request is carried out, only the reply is lost


FAULT_KINDS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        FaultKind("unavailable", grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable."),
        FaultKind(
            "reply_lost",
            grpc.StatusCode.UNAVAILABLE,
            "The service is currently unavailable.",
            after_work=True,
        ),
        FaultKind(
            "resource_exhausted",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "Quota exceeded for aiplatform.googleapis.com/resource_management_requests "
            "with base model: . Please submit a quota increase request.",
        ),
        FaultKind("deadline_exceeded", grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        FaultKind("internal", grpc.StatusCode.INTERNAL, "Internal error encountered."),
        # What a project that has not enabled an API answers (not transient: never retried).
        FaultKind(
            "permission_denied",
            grpc.StatusCode.PERMISSION_DENIED,
            "Cloud Run Admin API has not been used in project gcpjobs-local before or it is "
            "disabled.",
        ),
    )
}


class FaultError(ValueError):
    """An admin request named an unknown fault or a bad count."""


class FaultRegistry:
    """Armed faults per method; `take(method)` consumes one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[FaultKind]] = {}

    def arm(self, method: str, fault: str, count: int = 1) -> None:
        kind = FAULT_KINDS.get(fault)
        if kind is None:
            known = ", ".join(sorted(FAULT_KINDS))
            raise FaultError(f"unknown fault {fault!r}; use one of: {known}")
        if count < 1:
            raise FaultError(f"fault count must be at least 1, got {count}")
        if "." not in method:
            raise FaultError(
                f"method {method!r} must be spelled Service.Method, e.g. JobService.CreateCustomJob"
            )
        with self._lock:
            self._armed.setdefault(method, []).extend([kind] * count)

    def take(self, method: str) -> FaultKind | None:
        with self._lock:
            queue = self._armed.get(method)
            if not queue:
                return None
            kind = queue.pop(0)
            if not queue:
                del self._armed[method]
            return kind

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def armed(self) -> dict[str, list[str]]:
        with self._lock:
            return {method: [k.name for k in kinds] for method, kinds in self._armed.items()}


def error_for(kind: FaultKind) -> ServiceError:
    return ServiceError(kind.code, kind.message)
