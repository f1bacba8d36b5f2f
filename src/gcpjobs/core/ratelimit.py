"""A client-side budget of API calls per minute, shared by whatever polls through it.

Vertex allows 600 read requests a minute per project and region (reference §3.1) and answers
RESOURCE_EXHAUSTED beyond. A `RateLimit` keeps a process well under that: every call the
watcher makes (each list page, each Get) first takes a slot, and a call that finds none
waits for the next one; it never fails. The watcher also stretches its interval by the wait
the budget imposes (`backlog`), so a cycle that used many slots (a full resync of thousands
of jobs) is followed by a longer pause rather than by calls queueing up.

It is a GCRA token bucket: `per_minute` slots a minute on average, at most `burst` at once.
Slots are handed out in call order and synchronously, so it is safe to share between tasks
and threads (one event loop or several).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

# Half of Vertex's 600 reads a minute: room for the Gets, creates and cancels that do not go
# through the watcher, and for a second process in the same project.
DEFAULT_READS_PER_MINUTE = 300.0


class RateLimit:
    """At most `per_minute` calls a minute on average, `burst` at once (see the module)."""

    def __init__(
        self,
        per_minute: float = DEFAULT_READS_PER_MINUTE,
        *,
        burst: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(
                f"RateLimit needs per_minute > 0 and burst >= 1, got per_minute={per_minute}, "
                f"burst={burst}"
            )
        self.per_minute = per_minute
        self.burst = burst
        self._spacing = 60.0 / per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = -float("inf")  # theoretical arrival time of the next call (GCRA)
        self.calls = 0  # slots handed out
        self.waited = 0.0  # seconds callers spent waiting for them

    def reserve(self) -> float:
        """Take the next slot; how many seconds from now it starts (0: at once)."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            start = max(now, tat - (self.burst - 1) * self._spacing)
            self._tat = tat + self._spacing
            self.calls += 1
            wait = start - now
            self.waited += wait
            return wait

    async def acquire(self) -> None:
        """Wait for a slot (never fails)."""
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)

    def backlog(self) -> float:
        """Seconds until a call could go without waiting (0 when one could go now)."""
        with self._lock:
            now = self._clock()
            return max(0.0, self._tat - (self.burst - 1) * self._spacing - now)


_SHARED: dict[tuple[str, float], RateLimit] = {}
_SHARED_LOCK = threading.Lock()


def shared_rate_limit(per_minute: float = DEFAULT_READS_PER_MINUTE, *, scope: str = "") -> RateLimit:
    """The process-wide budget of `per_minute` calls for `scope` (a quota's name, such as
    `logging:PROJECT`), which every `JobWatcher` (scope "") and `LogWatcher` watching GCP
    uses unless it is given its own."""
    with _SHARED_LOCK:
        limit = _SHARED.get((scope, per_minute))
        if limit is None:
            limit = _SHARED[(scope, per_minute)] = RateLimit(per_minute)
        return limit


async def acquire(limit: RateLimit | None) -> None:
    """`limit.acquire()`, or nothing when there is no limit."""
    if limit is not None:
        await limit.acquire()


__all__ = ["DEFAULT_READS_PER_MINUTE", "RateLimit", "acquire", "shared_rate_limit"]
