"""Wait for one job to end by polling it, reporting every state change seen on the way.

The seam for issue 6 (one shared list-based watcher) is `fetch`: anything that returns the
job's current `JobStatus` will do.

Polling starts fast right after a submit or a change (the next change is likely soon) and
slows down ×1.5 while nothing happens, up to a cap. The GCP cap keeps a watcher far below
Vertex's 600 read requests per minute per region (reference §3.1): at 30 s a job costs
2 requests a minute.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gcpjobs.core.events import StateChange
from gcpjobs.errors import GcpJobsError
from gcpjobs.results import JobStatus
from gcpjobs.states import JobState

T = TypeVar("T")

OnChange = Callable[[StateChange], Any]  # may return an awaitable, which is awaited


class WaitTimeoutError(GcpJobsError, TimeoutError):
    """The job did not reach a terminal state in time (it keeps running)."""

    def __init__(self, name: str, state: JobState | None, timeout: float) -> None:
        self.name = name
        self.state = state
        self.timeout = timeout
        seen = f"is still {state}" if state is not None else "was not seen"
        super().__init__(
            f"job {name} {seen} after {timeout:g}s of waiting; it was not cancelled: wait "
            "longer (timeout=...) or cancel it"
        )


@dataclass(frozen=True)
class PollInterval:
    """Delays between polls: `fast` after a change, ×`growth` per unchanged poll, up to `cap`."""

    fast: float
    cap: float
    growth: float = 1.5

    def __post_init__(self) -> None:
        if self.fast <= 0 or self.cap < self.fast or self.growth < 1:
            raise ValueError(
                f"PollInterval needs 0 < fast <= cap and growth >= 1, got fast={self.fast}, "
                f"cap={self.cap}, growth={self.growth}"
            )

    @classmethod
    def for_emulator(cls) -> PollInterval:
        return cls(fast=0.05, cap=0.5)

    @classmethod
    def for_gcp(cls) -> PollInterval:
        return cls(fast=2.0, cap=30.0)

    @classmethod
    def fixed(cls, seconds: float) -> PollInterval:
        return cls(fast=seconds, cap=seconds, growth=1.0)

    def after(self, delay: float) -> float:
        """The delay that follows `delay` when nothing changed."""
        return min(delay * self.growth, self.cap)


async def notify(on_change: OnChange | None, change: StateChange) -> None:
    """Call a sync or async callback."""
    if on_change is None:
        return
    outcome = on_change(change)
    if inspect.isawaitable(outcome):
        await outcome


def wait_expired(
    name: str, last: JobStatus | None, timeout: float | None
) -> Callable[[], WaitTimeoutError]:
    """What `within_deadline` raises for a wait of `name` whose last observation is `last`."""
    return functools.partial(
        WaitTimeoutError, name, last.state if last else None, float(timeout or 0)
    )


async def within_deadline(
    start: Callable[[], Awaitable[T]],
    deadline: float | None,
    expired: Callable[[], BaseException],
) -> T:
    """`await start()`, cut short at `deadline` (the event loop's clock; None: no limit) by
    raising `expired()`; once the deadline has passed nothing is started. The one timeout rule
    of every wait: one job polled here, many through the shared watcher (watch/shared.py).
    A TimeoutError of the call's own, before the deadline, propagates as it is."""
    if deadline is None:
        return await start()
    loop = asyncio.get_running_loop()
    remaining = deadline - loop.time()
    if remaining <= 0:
        raise expired()
    try:
        return await asyncio.wait_for(start(), remaining)
    except asyncio.TimeoutError:
        if loop.time() >= deadline:
            raise expired() from None
        raise


async def wait_until_terminal(
    fetch: Callable[[], Awaitable[JobStatus]],
    *,
    on_change: OnChange | None = None,
    interval: PollInterval,
    timeout: float | None = None,
    name: str | None = None,
    first: JobStatus | None = None,
) -> JobStatus:
    """Poll `fetch` until the job is terminal; return the terminal status.

    Every observed state change is reported to `on_change` once, in order, the first
    observation included (`previous=None`), and the callback has returned before the next
    poll. Errors from `fetch` propagate (the client has retried transient ones already).
    `timeout` (seconds) raises `WaitTimeoutError`; the job itself is left alone. `name` is
    only used in that error's message until the first observation names the job. `first` is
    an observation the caller already has (the reply to the create): it is reported as the
    first one, and polling starts `interval.fast` after it.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    last: JobStatus | None = None
    delay = interval.fast
    name = name or "(not yet observed)"
    pending_first = first
    while True:
        if pending_first is not None:
            status, pending_first = pending_first, None
        else:
            status = await within_deadline(fetch, deadline, wait_expired(name, last, timeout))
        name = status.name
        if last is None or status.state is not last.state:
            change = StateChange.seen(last, status)
            await notify(on_change, change)
            delay = interval.fast
        else:
            delay = interval.after(delay)
        last = status
        if status.is_terminal:
            return status
        pause = delay if deadline is None else min(delay, max(0.0, deadline - loop.time()))
        await asyncio.sleep(pause)
