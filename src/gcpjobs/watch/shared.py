"""One watcher per process: many jobs followed with few API calls.

`wait_until_terminal` (watch/poll.py) polls one job with one Get per poll. A process that
waits on hundreds of jobs at once (the Prefect worker) would make hundreds of calls per
cycle and soon meet Vertex's read quota (600 a minute per region). A `JobWatcher` runs one
poll task per client instead: each cycle asks `client.statuses(every watched name)` once
(one list call per region, plus a Get for each job that has just ended; see the clients)
and hands each status to the waiters on that job as soon as its page arrives.

At thousands of jobs even one listing of every unended job is many pages a cycle, so a
cycle lists only what changed: `client.updates(names, since)` (Vertex: the jobs gcpjobs
submitted whose `update_time` is at or after the previous cycle's start, less `overlap`
for clock skew; ended jobs included, so none is missed). A name it does not show has not
changed. Names the poll has not observed itself (new waiters, unless the caller's `known`
status is newer than the cursor) are checked with `statuses()`, and every `resync` seconds
a full `statuses()` of every name catches anything the cursor could miss (a job deleted
before its end was seen is then found gone with one Get). A client that cannot list by
update time (Cloud Run) gets a full `statuses()` each cycle. Every call takes a slot of the
watcher's `RateLimit`, and the pause after a cycle stretches to what the budget allows.

The waiters report in their own tasks: the poll task only puts a status in a waiter's inbox
when that waiter has not yet seen its state, and the waiter's `wait()` call runs its
`on_change` callback. So a slow callback delays only its own job's reports, one that raises
ends only its own wait, and a cancelled wait simply leaves.

    watcher = default_watcher()           # one per event loop, shared by integrations
    result = await watcher.wait(client, status.name, known=status, on_change=print)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from gcpjobs.core.events import StateChange
from gcpjobs.core.poll import (
    OnChange,
    PollInterval,
    notify,
    wait_expired,
    within_deadline,
)
from gcpjobs.core.ratelimit import RateLimit, shared_rate_limit
from gcpjobs.errors import GcpJobsError, JobNotFoundError
from gcpjobs.results import JobResult, JobStatus
from gcpjobs.specs.labels import SUBMISSION_LABEL
from gcpjobs.states import JobState

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient

logger = logging.getLogger(__name__)

# Consecutive failed `statuses()` calls (each already retried by the client) after which the
# waiters of that client fail with the last error: an outage of a few cycles only delays them.
FAILURE_LIMIT = 10

# How often a full `statuses()` of every watched job backs up the incremental listing, and
# how far before the previous cycle's start each incremental listing reaches (clock skew
# between this host and the service; changes seen twice are reported once).
RESYNC_SECONDS = 600.0
OVERLAP_SECONDS = {"emulator": 1.0, "gcp": 10.0}

_Delivery = JobStatus | BaseException  # what a waiter's inbox holds


@dataclass(eq=False)
class _Waiter:
    """One pending `wait()`: its inbox, and the last state put in it (so each state once)."""

    inbox: asyncio.Queue[_Delivery]
    last_state: JobState | None

    def offer(self, status: JobStatus) -> bool:
        """Hand `status` over if its state is new to this waiter; whether it was."""
        if status.state is self.last_state:
            return False
        self.last_state = status.state
        self.inbox.put_nowait(status)
        return True

    def fail(self, error: BaseException) -> None:
        self.inbox.put_nowait(error)


class _ClientPoll:
    """The poll task of one client, and the waiters that follow jobs through it.

    Times are the event loop's clock. `next_poll` is when the next cycle is due: a new
    waiter brings it forward (at once if its job has not been observed yet, else `fast`
    from now) and sets `wake`, so a loop asleep for a long interval notices. `latest` holds
    the last observation of each watched job; `unverified` the names whose latest is a
    caller's `known` status, not yet one of the poll's; `since` the (wall-clock) start of
    the last successful cycle, from which the next incremental listing reaches back.
    """

    def __init__(
        self, watcher: JobWatcher, client: JobClient, interval: PollInterval | None
    ) -> None:
        self.watcher = watcher
        self.client = client
        self.interval = interval
        self.waiters: dict[str, list[_Waiter]] = {}
        self.latest: dict[str, JobStatus] = {}
        self.unverified: set[str] = set()
        self.since: datetime | None = None
        self.last_full = asyncio.get_running_loop().time()  # the first resync is due later
        self.rate_limit = watcher._rate_limit
        self.overlap = timedelta(seconds=watcher._overlap or 0.0)
        self.wake = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.next_poll = 0.0  # the first cycle is due at once
        self.delay = interval.fast if interval else 0.0  # set by `_run` once the schedule is known
        self.failures = 0
        self.task = self.loop.create_task(self._run(), name=f"gcpjobs-watch-{id(client):x}")

    # --------------------------------------------------------------------------- waiters

    def add(self, name: str, waiter: _Waiter, known: JobStatus | None) -> None:
        self.waiters.setdefault(name, []).append(waiter)
        latest = self.latest.get(name)
        if latest is None:
            if known is not None:
                self.latest[name] = known
                self.unverified.add(name)
        elif name not in self.unverified and not _older(latest, known):
            waiter.offer(latest)  # what the poll last saw, if the caller's is not newer
        # A new job changes soon (it was just submitted): poll fast again. Its first
        # observation, unless the caller had one, is due at once. (Before the schedule is
        # known the first cycle is due at once anyway.)
        if self.interval is not None:
            self.delay = self.interval.fast
            soon = self.loop.time() + (self.delay if known is not None else 0.0)
            self.next_poll = min(self.next_poll, soon)
            self.wake.set()

    def remove(self, name: str, waiter: _Waiter) -> None:
        waiters = self.waiters.get(name)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                self._forget(name)
        if not self.waiters:
            self.wake.set()  # nothing left to watch: let the task end now, not after its sleep

    def _forget(self, name: str) -> list[_Waiter]:
        self.latest.pop(name, None)
        self.unverified.discard(name)
        return self.waiters.pop(name, [])

    def fail_all(self, error: BaseException) -> None:
        waiters, self.waiters = self.waiters, {}
        self.latest.clear()
        self.unverified.clear()
        for name_waiters in waiters.values():
            for waiter in name_waiters:
                waiter.fail(error)

    # ---------------------------------------------------------------------------- polling

    async def _run(self) -> None:
        try:
            if self.interval is None or self.watcher._overlap is None or (
                self.rate_limit is None and self.watcher._rate_limit_default
            ):
                # May resolve the client's target (and start the embedded emulator): a thread.
                schedule, is_emulator = await asyncio.to_thread(
                    lambda: (self.client.poll_schedule(), self.client.target.is_emulator)
                )
                if self.interval is None:
                    self.interval = schedule
                    self.delay = self.interval.fast
                if self.watcher._overlap is None:
                    self.overlap = timedelta(
                        seconds=OVERLAP_SECONDS["emulator" if is_emulator else "gcp"]
                    )
                if self.rate_limit is None and self.watcher._rate_limit_default and not is_emulator:
                    self.rate_limit = shared_rate_limit()
            while self.waiters:
                pause = self.next_poll - self.loop.time()
                if pause > 0:
                    self.wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), pause)
                    continue
                self.next_poll = math.inf  # waiters added during the cycle bring it forward
                changed = await self._cycle()
                self.delay = self.interval.fast if changed else self.interval.after(self.delay)
                # The budget's debt stretches the pause (calls would only wait for it).
                stretch = self.rate_limit.backlog() if self.rate_limit is not None else 0.0
                self.next_poll = min(self.next_poll, self.loop.time() + max(self.delay, stretch))
        except Exception as error:  # a target that cannot be resolved, or a bug: never hang
            logger.exception("the gcpjobs watcher of %r stopped", self.client)
            self.fail_all(error)
        finally:
            # No await between the last `while self.waiters` and this: a wait() either joined
            # this task in time or finds none and starts a new one.
            self.watcher._ended(self)

    async def _observe(
        self, names: list[str], on_status: Callable[[str, JobStatus], None]
    ) -> tuple[dict[str, JobStatus], Collection[str]]:
        """What this cycle saw, and the names that must be in it (missing ones do not exist).

        Incremental when it can (see the module): the changes since the last cycle, plus a
        `statuses()` of the names the poll cannot vouch for; otherwise one full `statuses()`.
        """
        started = datetime.now(timezone.utc)
        limit = self.rate_limit
        if self.loop.time() - self.last_full < self.watcher.resync:
            # The first cycle reaches back from now: names observed earlier get checked.
            since = (self.since or started) - self.overlap
            changes = await self.client.updates(names, since, rate_limit=limit)
            if changes is not None:
                check = [name for name in names if self._needs_check(name, since)]
                checked = await self.client.statuses(
                    check, rate_limit=limit, on_status=on_status
                ) if check else {}
                self.watcher._full_checks += len(check)
                self.since = started
                return {**changes, **checked}, check
        self.last_full = self.loop.time()
        found = await self.client.statuses(names, rate_limit=limit, on_status=on_status)
        self.watcher._full_checks += len(names)
        self.since = started
        return found, names

    def _needs_check(self, name: str, since: datetime) -> bool:
        """Whether an incremental listing from `since` could miss a change of `name`: not
        observed yet, observed only by a caller longer ago than `since`, or not gcpjobs' (the
        listing shows only jobs with its submission label)."""
        latest = self.latest.get(name)
        if latest is None or SUBMISSION_LABEL not in latest.labels:
            return True
        if name in self.unverified:
            # The caller saw it no earlier than its update_time: a later change is listed.
            if latest.update_time is None or latest.update_time < since:
                return True
            self.unverified.discard(name)
        return False

    async def _cycle(self) -> bool:
        """One observation of every watched job, handed to its waiters; whether any waiter
        saw a change (a failed call counts as none, so the next cycle backs off).

        Statuses reach the waiters as the call's pages arrive: a listing of many pages (Cloud
        Run, which cannot list only what changed) reports its first pages' changes before its
        last page is read. What the call returns is handed over again at the end, which
        changes nothing for what was already delivered, and tells the waiters of names found
        not to exist."""
        names = list(self.waiters)
        self.watcher._calls += 1
        changed = False

        def deliver(name: str, status: JobStatus) -> None:
            nonlocal changed
            changed = self._deliver(name, status) or changed

        try:
            found, required = await self._observe(names, deliver)
        except Exception as error:
            self.failures += 1
            if self.failures >= self.watcher.failure_limit:
                logger.error(
                    "status poll of %d job(s) failed %d times in a row; their waits fail: %s",
                    len(names), self.failures, error,
                )
                self.fail_all(error)
            else:
                logger.warning(
                    "status poll of %d job(s) failed (%d in a row; waits fail after %d); "
                    "polling again: %s", len(names), self.failures, self.watcher.failure_limit,
                    error,
                )
            return False
        self.failures = 0
        required = set(required)
        for name in names:
            if not self.waiters.get(name):
                continue  # its waiters left while the call was out, or it ended early on
            status = found.get(name)
            if status is not None:
                changed = self._deliver(name, status) or changed
            elif name in required:
                missing = JobNotFoundError(
                    "NOT_FOUND",
                    f"job {name} does not exist (it was deleted, or never existed); check the "
                    "name, project and region",
                )
                for waiter in self._forget(name):
                    waiter.fail(missing)
                changed = True
            # else: not listed as changed, so unchanged
        return changed

    def _deliver(self, name: str, status: JobStatus) -> bool:
        """Hand one observation of `name` to its waiters; whether any of them saw a new state.
        Idempotent: the same status twice is handed over once."""
        waiters = self.waiters.get(name)
        if not waiters:
            return False
        latest = self.latest.get(name)
        if name not in self.unverified and _older(status, latest):
            return False  # an overlapping listing's stale copy
        self.latest[name] = status
        self.unverified.discard(name)
        changed = False
        for waiter in waiters:
            changed = waiter.offer(status) or changed
        if status.is_terminal:
            self._forget(name)  # its waiters finish from their inboxes
        return changed


def _older(status: JobStatus, than: JobStatus | None) -> bool:
    """Whether `status` is an older observation of the job than `than` (by update_time)."""
    if than is None or status.update_time is None or than.update_time is None:
        return False
    return status.update_time < than.update_time


class JobWatcher:
    """Follows many jobs with one poll per client: each cycle lists what changed since the
    last (see the module).

    `interval` overrides every client's own `poll_schedule()`: fast after a new job or a
    change, slower (×growth, up to the cap) while nothing changes. After `failure_limit`
    consecutive failed polls of one client, the waits through it fail with the last error.
    `rate_limit` is the budget every call of every poll takes a slot of; by default polls of
    GCP share the process-wide `shared_rate_limit()` (300 calls a minute) and polls of an
    emulator have none. `resync` is the period, in seconds, of the full check of every job;
    `overlap` how far back before the previous cycle each incremental listing reaches (by
    default 1 s on an emulator, 10 s on GCP). Use it from one event loop
    (`default_watcher()` gives one per loop).
    """

    def __init__(
        self,
        *,
        interval: PollInterval | None = None,
        failure_limit: int = FAILURE_LIMIT,
        rate_limit: RateLimit | None = None,
        resync: float = RESYNC_SECONDS,
        overlap: float | None = None,
    ) -> None:
        if failure_limit < 1:
            raise GcpJobsError(f"failure_limit must be at least 1, got {failure_limit}")
        if resync < 0 or (overlap is not None and overlap < 0):
            raise GcpJobsError(f"resync and overlap must not be negative, got {resync}, {overlap}")
        self._interval = interval
        self.failure_limit = failure_limit
        self._rate_limit = rate_limit
        self._rate_limit_default = rate_limit is None
        self.resync = resync
        self._overlap = overlap
        self._polls: dict[int, _ClientPoll] = {}  # by id(client); each holds its client
        self._calls = 0
        self._full_checks = 0
        self._closed = False

    @property
    def calls(self) -> int:
        """How many `statuses()` calls this watcher has made (for tests and benchmarks)."""
        return self._calls

    @property
    def full_checks(self) -> int:
        """How many job names it has checked with `statuses()` rather than by the incremental
        listing (each first observation, resync or fallback; for tests and benchmarks)."""
        return self._full_checks

    @property
    def watched(self) -> int:
        """How many jobs it follows now (a job waited on through two clients counts twice)."""
        return sum(len(poll.waiters) for poll in self._polls.values())

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait(
        self,
        client: JobClient,
        name: str,
        *,
        on_change: OnChange | None = None,
        known: JobStatus | None = None,
        timeout: float | None = None,
    ) -> JobResult:
        """Wait until job `name` (through `client`) ends, reporting every state change seen.

        As `wait_until_terminal`: `on_change` (sync or async) gets a `StateChange` for the
        first observation (`known`, when the caller has one, e.g. the create's reply) and for
        every change after it, in order, each callback returning before the next report.
        `timeout` raises `WaitTimeoutError` and leaves the job running. Cancelling the
        awaiting task only ends this wait. A job that does not exist raises
        `JobNotFoundError`; a callback's exception ends this wait only.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._closed:
            raise GcpJobsError("this JobWatcher is closed; create a new one or use default_watcher()")
        if known is not None and known.is_terminal:  # nothing to poll for
            await notify(on_change, StateChange.seen(None, known))
            return JobResult(known)
        full = await _full_name(client, name)
        waiter = _Waiter(asyncio.Queue(), known.state if known else None)
        poll = self._poll_for(client, loop)
        poll.add(full, waiter, known)
        last: JobStatus | None = None
        first = known
        try:
            while True:
                if first is not None:
                    delivery: _Delivery = first
                    first = None
                else:
                    delivery = await _next(waiter, deadline, full, last, timeout)
                if isinstance(delivery, BaseException):
                    raise delivery
                change = StateChange.seen(last, delivery)
                last = delivery
                try:
                    await notify(on_change, change)
                except Exception as error:
                    logger.info("on_change for %s raised %r; that wait ends with it", full, error)
                    raise
                if delivery.is_terminal:
                    return JobResult(delivery)
        finally:
            poll.remove(full, waiter)

    def _poll_for(self, client: JobClient, loop: asyncio.AbstractEventLoop) -> _ClientPoll:
        """The running poll of `client`, or a new one (no await here: see `_ClientPoll._run`)."""
        if self._closed:
            raise GcpJobsError("this JobWatcher is closed; create a new one or use default_watcher()")
        if any(poll.loop is not loop for poll in self._polls.values()):
            raise GcpJobsError(
                "this JobWatcher is polling on another event loop; use one watcher per loop "
                "(default_watcher())"
            )
        poll = self._polls.get(id(client))
        if poll is None:
            poll = self._polls[id(client)] = _ClientPoll(self, client, self._interval)
        return poll

    def _ended(self, poll: _ClientPoll) -> None:
        if self._polls.get(id(poll.client)) is poll:
            del self._polls[id(poll.client)]

    async def aclose(self) -> None:
        """Stop polling. Pending waits raise `GcpJobsError`; their jobs keep running."""
        self._closed = True
        polls = list(self._polls.values())
        closed = GcpJobsError(
            "the job watcher was closed while waiting; the job was left running (wait for it "
            "again, or cancel it)"
        )
        for poll in polls:
            poll.fail_all(closed)
            poll.task.cancel()
        await asyncio.gather(*(poll.task for poll in polls), return_exceptions=True)




async def _full_name(client: JobClient, name: str) -> str:
    """The job's full resource name: what `statuses()` keys its answer by. A bare id needs the
    client's project, whose lookup may block, so it is done in a thread."""
    if name.startswith("projects/"):
        return client.resource_name(name)
    return await asyncio.to_thread(client.resource_name, name)


async def _next(
    waiter: _Waiter, deadline: float | None, name: str, last: JobStatus | None,
    timeout: float | None,
) -> _Delivery:
    """The waiter's next delivery, by the wait's deadline (one already there wins)."""
    if not waiter.inbox.empty():
        return waiter.inbox.get_nowait()
    return await within_deadline(waiter.inbox.get, deadline, wait_expired(name, last, timeout))


_DEFAULT_WATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, JobWatcher] = (
    weakref.WeakKeyDictionary()
)


def default_watcher() -> JobWatcher:
    """The running event loop's shared watcher (made on first use; a closed one is replaced),
    so that the CLI, integrations and user code polling the same jobs share their calls."""
    loop = asyncio.get_running_loop()
    watcher = _DEFAULT_WATCHERS.get(loop)
    if watcher is None or watcher.closed:
        watcher = _DEFAULT_WATCHERS[loop] = JobWatcher()
    return watcher


__all__ = ["FAILURE_LIMIT", "OVERLAP_SECONDS", "RESYNC_SECONDS", "JobWatcher", "default_watcher"]
