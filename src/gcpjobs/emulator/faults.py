"""Fault injection for API methods (`POST /_emulator/faults`).

Two ways to ask for faults, both per method (`JobService.CreateCustomJob`):

- one-shot: a fault armed for the next N calls of a method;
- a rule: each call of the method (or of every method: `*`) draws a fault with the given
  probabilities (`{"unavailable": 0.05, "reply_lost": 0.05}`) from a seeded RNG, so a run can be
  reproduced, and waits `latency_seconds` first. A rule for a method replaces the `*` rule for
  it. Armed one-shot faults are taken before rules apply.

Most faults refuse the call before any work is done; `reply_lost` does the work and then answers
UNAVAILABLE, as a reply dropped on the network would look to the client. Every fault that
reaches the client is counted per method and kind (`injected()`); a `reply_lost` drawn for a
call that is refused anyway (the job does not exist, say) is not: the client hears the refusal.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

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


ALL_METHODS = "*"


@dataclass
class FaultRule:
    """Faults drawn with probabilities, and latency, for every call of a method."""

    rates: dict[str, float]
    latency_seconds: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def document(self) -> dict[str, object]:
        return {"rates": dict(self.rates), "latency_seconds": self.latency_seconds,
                "seed": self.seed}

    def draw(self) -> FaultKind | None:
        roll = self.rng.random()
        for name, rate in self.rates.items():  # the bands of [0, 1) that each fault takes
            if roll < rate:
                return FAULT_KINDS[name]
            roll -= rate
        return None


def _check_method(method: str) -> None:
    if method != ALL_METHODS and "." not in method:
        raise FaultError(
            f"method {method!r} must be spelled Service.Method, e.g. JobService.CreateCustomJob, "
            "or * for every method"
        )


class FaultRegistry:
    """Armed faults and rules per method; `take(method)` gives the fault for one call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[FaultKind]] = {}
        self._rules: dict[str, FaultRule] = {}
        self._injected: dict[str, dict[str, int]] = {}

    def set_rule(
        self,
        method: str,
        rates: Mapping[str, float],
        *,
        latency_seconds: float = 0.0,
        seed: int | None = None,
    ) -> FaultRule:
        """Apply `rates` (fault -> probability per call) and latency to every call of `method`
        (`*`: every method); empty rates and no latency remove the rule."""
        _check_method(method)
        checked: dict[str, float] = {}
        for name, rate in rates.items():
            if name not in FAULT_KINDS:
                known = ", ".join(sorted(FAULT_KINDS))
                raise FaultError(f"unknown fault {name!r}; use one of: {known}")
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) \
                    or not math.isfinite(rate) or not 0 <= rate <= 1:
                raise FaultError(f"the rate of {name} must be a probability from 0 to 1, "
                                 f"got {rate!r}")
            checked[name] = float(rate)
        if sum(checked.values()) > 1 + 1e-9:
            raise FaultError("the rates add up to more than 1")
        if isinstance(latency_seconds, bool) or not isinstance(latency_seconds, (int, float)) \
                or not math.isfinite(latency_seconds) or not 0 <= latency_seconds <= 60:
            raise FaultError(f"latency_seconds must be from 0 to 60, got {latency_seconds!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultError(f"seed must be a whole number, got {seed!r}")
        rule = FaultRule(checked, float(latency_seconds), seed, random.Random(seed))
        with self._lock:
            if not checked and not latency_seconds:
                self._rules.pop(method, None)
            else:
                self._rules[method] = rule
        return rule

    def arm(self, method: str, fault: str, count: int = 1) -> None:
        kind = FAULT_KINDS.get(fault)
        if kind is None:
            known = ", ".join(sorted(FAULT_KINDS))
            raise FaultError(f"unknown fault {fault!r}; use one of: {known}")
        if count < 1:
            raise FaultError(f"fault count must be at least 1, got {count}")
        if method == ALL_METHODS:
            raise FaultError("one-shot faults are armed for one method; use a rule for *")
        _check_method(method)
        with self._lock:
            self._armed.setdefault(method, []).extend([kind] * count)

    def take(self, method: str) -> FaultKind | None:
        """The fault for one call of `method`, if any; waits the rule's latency first. The
        caller counts it with `count` once it takes effect (a `reply_lost` does not when the
        call is refused anyway: the client hears the refusal)."""
        with self._lock:
            queue = self._armed.get(method)
            if queue:
                kind: FaultKind | None = queue.pop(0)
                if not queue:
                    del self._armed[method]
                latency = 0.0
            else:
                rule = self._rules.get(method) or self._rules.get(ALL_METHODS)
                if rule is None:
                    return None
                kind = rule.draw()
                latency = rule.latency_seconds
        if latency:
            time.sleep(latency)  # the caller's request thread: added latency, as on a slow link
        return kind

    def count(self, method: str, kind: FaultKind) -> None:
        """Count a fault of `take`'s that took effect (see `injected`)."""
        with self._lock:
            counts = self._injected.setdefault(method, {})
            counts[kind.name] = counts.get(kind.name, 0) + 1

    def clear(self) -> None:
        """Forget armed faults, rules and counts."""
        with self._lock:
            self._armed.clear()
            self._rules.clear()
            self._injected.clear()

    def rules(self) -> dict[str, dict[str, object]]:
        with self._lock:
            return {method: rule.document() for method, rule in self._rules.items()}

    def injected(self) -> dict[str, dict[str, int]]:
        """Faults injected so far: method -> fault -> count."""
        with self._lock:
            return {method: dict(counts) for method, counts in self._injected.items()}

    def armed(self) -> dict[str, list[str]]:
        with self._lock:
            return {method: [k.name for k in kinds] for method, kinds in self._armed.items()}


def error_for(kind: FaultKind) -> ServiceError:
    return ServiceError(kind.code, kind.message)
