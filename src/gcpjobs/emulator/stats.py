"""Request counters per API method, for benchmarks and tests (`GET /_emulator/stats`).

Keys are `Service.Method` (`JobService.GetCustomJob`, `Jobs.RunJob`, `Executions.GetExecution`,
`Operations.GetOperation`), the same
whichever transport carried the call, so a benchmark can compare gRPC and REST runs.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

# Always reported, so a reader can rely on the keys being present.
_JOB_STATE_KEYS = ("queued", "pending", "running", "cancelling", "succeeded", "failed", "cancelled")


class RequestStats:
    """Thread-safe counters; one increment per call that reached the service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()

    def count(self, method: str) -> None:
        with self._lock:
            self._requests[method] += 1

    def requests(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._requests.items()))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()


def job_state_counts(state_names: Mapping[str, int]) -> dict[str, int]:
    """`{"JOB_STATE_RUNNING": 3}` → `{"running": 3, "queued": 0, ...}`."""
    counts = dict.fromkeys(_JOB_STATE_KEYS, 0)
    for name, number in state_names.items():
        key = name.removeprefix("JOB_STATE_").lower()
        counts[key] = counts.get(key, 0) + number
    return counts


def snapshot(
    stats: RequestStats,
    state_names: Mapping[str, int],
    executions: Mapping[str, int],
) -> dict[str, dict[str, int]]:
    """`{"requests": ..., "jobs": Vertex jobs per state, "executions": Cloud Run executions per
    outcome (running, succeeded, failed, cancelled)}`: always the same keys, zeros included."""
    return {
        "requests": stats.requests(),
        "jobs": job_state_counts(state_names),
        "executions": dict(executions),
    }
