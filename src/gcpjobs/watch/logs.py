"""One log poller per project: the lines of many jobs followed with few Logging reads.

Cloud Logging allows 60 read requests a minute per project. A process that follows each of
its jobs' logs with its own query (a Prefect worker with a hundred flow runs) would need a
read per job per poll, and be refused. A `LogWatcher` keeps one poll task per (target,
project) instead: each cycle it asks for the lines of every followed job of that project in
one query, `(job A's filter AND timestamp >= A's cursor) OR (job B's ...) ...` (split where
the filter would pass Logging's 20,000-character limit), and hands each line to the
followers of its job.

Each follower keeps its own `LogCursor`, so its lines come once each and in order, none
skipped (each read reaches back at least as far as lines reach Logging late on GCP, 10 s, and
skips the ids it has seen); a line is recorded in the cursor when the follower's consumer takes it, so a saved
cursor never claims a line that was not shown. A follow ends after the cycle that began with
its `until()` true (the last lines are not lost). Every read takes a slot of the watcher's
`RateLimit` (on GCP, a budget per project shared by the process), and the pause after a
cycle stretches to what the budget allows. A read refused for good (permission, a bad
filter) ends the follows it was for with that error; transient failures are tried again
each cycle, and end them only after `FAILURE_LIMIT` in a row.

    async for line in default_log_watcher().follow(target, job_name, until=ended):
        print(line.text)
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gcpjobs.clients.logs import (
    AsyncLogReader,
    LogCursor,
    LogKey,
    LogLine,
    LogReadError,
    LogSubject,
    late_lines_seconds,
    log_subject,
    poll_interval,
    read_start,
)
from gcpjobs.clients.target import Target
from gcpjobs.core.ratelimit import RateLimit, acquire, shared_rate_limit

# Half of Logging's 60 reads a minute per project: room for `gcpjobs logs` in another
# process, and for the paging of a cycle that found many lines.
LOG_READS_PER_MINUTE = 30.0
# Consecutive failed reads (UNAVAILABLE, RESOURCE_EXHAUSTED ...) after which a follow ends
# with the last error: an outage of a few cycles only delays the lines.
FAILURE_LIMIT = 5
# Cloud Logging refuses filters longer than 20,000 characters; a query is kept below this.
MAX_FILTER_CHARS = 19_000

_End = object()  # what a follower's inbox gets after its last line


@dataclass(eq=False)
class _Follower:
    subject: LogSubject
    cursor: LogCursor
    since: datetime | None
    until: Callable[[], bool]
    late: float  # seconds a line can reach Logging late: the least overlap of each read
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    queued: set[str] = field(default_factory=set)  # ids in the inbox, not yet in the cursor
    failures: int = 0

    def clause(self) -> str:
        return f"({self.subject.since(read_start(self.cursor, self.since, at_least=self.late))})"

    def offer(self, line: LogLine) -> None:
        if line.insert_id in self.cursor.seen or line.insert_id in self.queued:
            return
        self.queued.add(line.insert_id)
        self.inbox.put_nowait(line)


def _batches(followers: list[_Follower], limit: int) -> list[list[tuple[_Follower, str]]]:
    """The followers with their clauses, in groups whose OR-ed filter fits in `limit`."""
    batches: list[list[tuple[_Follower, str]]] = []
    size = limit
    for follower in followers:
        clause = follower.clause()
        if size + len(clause) + 4 > limit:
            batches.append([])
            size = 0
        batches[-1].append((follower, clause))
        size += len(clause) + 4  # " OR "
    return batches


class _Project:
    """The followers of one project on one target, and the task that polls for them."""

    def __init__(self, reader: AsyncLogReader, project: str, interval: float,
                 rate_limit: RateLimit | None, filter_limit: int) -> None:
        self.reader = reader
        self.project = project
        self.interval = interval
        self.rate_limit = rate_limit
        self.filter_limit = filter_limit
        self.followers: set[_Follower] = set()
        self.task: asyncio.Task[None] | None = None

    async def poll(self, forget: Callable[[], None]) -> None:
        try:
            while self.followers:
                await self._cycle()
                if not self.followers:
                    break
                pause = self.interval
                if self.rate_limit is not None:
                    pause = max(pause, self.rate_limit.backlog())
                await asyncio.sleep(pause)
        finally:
            forget()  # before the await below: a new follow starts a new poller
            with contextlib.suppress(Exception):
                await self.reader.close()

    async def _cycle(self) -> None:
        followers = list(self.followers)
        finishing = {follower for follower in followers if follower.until()}
        for batch in _batches(followers, self.filter_limit):
            where = " OR ".join(clause for _, clause in batch)
            await acquire(self.rate_limit)
            try:
                rows = await self.reader.read(self.project, where, rate_limit=self.rate_limit)
            except Exception as error:  # LogReadError; or no credentials, for one
                transient = isinstance(error, LogReadError) and error.transient
                for follower, _ in batch:
                    follower.failures += 1
                    if not transient or follower.failures >= FAILURE_LIMIT:
                        self._end(follower, error)
                continue
            by_key: dict[LogKey, list[_Follower]] = {}
            for follower, _ in batch:
                by_key.setdefault(follower.subject.key, []).append(follower)
                follower.failures = 0
            for key, line in rows:
                for follower in by_key.get(key, ()):
                    follower.offer(line)
            for follower, _ in batch:
                if follower in finishing:
                    self._end(follower, _End)

    def _end(self, follower: _Follower, last: object) -> None:
        follower.inbox.put_nowait(last)
        self.followers.discard(follower)


class LogWatcher:
    """Follows jobs' log lines with one poll task per (target, project); see the module.

    `interval` fixes the pause between polls (default: `poll_interval(target)`, 5 s on GCP);
    `rate_limit` is the budget of reads (default: none on the emulator, and on GCP
    `LOG_READS_PER_MINUTE` per project, shared by the process).
    """

    def __init__(self, *, interval: float | None = None, rate_limit: RateLimit | None = None,
                 filter_limit: int = MAX_FILTER_CHARS) -> None:
        if interval is not None and not interval > 0:
            raise ValueError(f"LogWatcher needs interval > 0, got {interval}")
        self._interval = interval
        self._rate_limit = rate_limit
        self._filter_limit = filter_limit
        self._projects: dict[tuple[Target, int, str], _Project] = {}

    def _project(self, target: Target, project: str, credentials: Any) -> _Project:
        key = (target, id(credentials), project)
        poller = self._projects.get(key)
        if poller is None:
            rate_limit = self._rate_limit
            if rate_limit is None and not target.is_emulator:
                rate_limit = shared_rate_limit(LOG_READS_PER_MINUTE, scope=f"logging:{project}")
            poller = self._projects[key] = _Project(
                AsyncLogReader(target, credentials=credentials), project,
                self._interval if self._interval is not None else poll_interval(target),
                rate_limit, self._filter_limit)
        return poller

    def _start(self, key: tuple[Target, int, str], poller: _Project) -> None:
        def forget() -> None:
            if self._projects.get(key) is poller:
                del self._projects[key]

        poller.task = asyncio.get_running_loop().create_task(poller.poll(forget))

    async def follow(
        self, target: Target, job_name: str, *, until: Callable[[], bool] | None = None,
        since: datetime | None = None, cursor: LogCursor | None = None, credentials: Any = None,
    ) -> AsyncIterator[LogLine]:
        """The job's lines as they are logged, each once, oldest first (from `since`, or from
        where `cursor` stopped); ends after the poll that follows `until()` turning true, or
        never without `until`. Raises LogReadError if Logging cannot be read."""
        follower = self._follower(target, job_name, until, since, cursor)
        async for batch in self._arrivals(target, follower, credentials):
            for line in batch:
                self._hand_out(follower, line)  # as it is handed out: a consumer that
                yield line                      # stops loses nothing

    async def follow_batches(
        self, target: Target, job_name: str, *, until: Callable[[], bool] | None = None,
        since: datetime | None = None, cursor: LogCursor | None = None, credentials: Any = None,
    ) -> AsyncIterator[list[LogLine]]:
        """As `follow`, each time with every line that has arrived (never an empty list): a
        consumer that does something per step (prints, saves the cursor) does it once for a
        thousand lines of a chatty job rather than a thousand times. The lines of a batch are
        in the cursor when it is handed out."""
        follower = self._follower(target, job_name, until, since, cursor)
        async for batch in self._arrivals(target, follower, credentials):
            for line in batch:
                self._hand_out(follower, line)
            yield batch

    @staticmethod
    def _follower(target: Target, job_name: str, until: Callable[[], bool] | None,
                  since: datetime | None, cursor: LogCursor | None) -> _Follower:
        return _Follower(log_subject(job_name), cursor if cursor is not None else LogCursor(),
                         since, until if until is not None else (lambda: False),
                         late_lines_seconds(target))

    async def _arrivals(self, target: Target, follower: _Follower,
                        credentials: Any) -> AsyncIterator[list[LogLine]]:
        """The follower's lines, all that wait in its inbox each time; then its end."""
        key = (target, id(credentials), follower.subject.project)
        poller = self._project(target, follower.subject.project, credentials)
        poller.followers.add(follower)
        if poller.task is None:
            self._start(key, poller)
        try:
            while True:
                items = [await follower.inbox.get()]
                while not follower.inbox.empty():
                    items.append(follower.inbox.get_nowait())
                batch: list[LogLine] = []
                for item in items:
                    if item is _End or isinstance(item, BaseException):
                        if batch:  # the lines that came before the end are handed out first
                            yield batch
                        if isinstance(item, BaseException):
                            raise item
                        return
                    batch.append(item)
                yield batch
        finally:
            poller.followers.discard(follower)

    @staticmethod
    def _hand_out(follower: _Follower, line: LogLine) -> None:
        follower.queued.discard(line.insert_id)
        follower.cursor.take(line)


_DEFAULT_WATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LogWatcher] = (
    weakref.WeakKeyDictionary())


def default_log_watcher() -> LogWatcher:
    """The running event loop's shared log watcher (made on first use), so that everything
    following jobs' lines in a process shares its Logging reads."""
    loop = asyncio.get_running_loop()
    watcher = _DEFAULT_WATCHERS.get(loop)
    if watcher is None:
        watcher = _DEFAULT_WATCHERS[loop] = LogWatcher()
    return watcher


__all__ = ["FAILURE_LIMIT", "LOG_READS_PER_MINUTE", "MAX_FILTER_CHARS", "LogWatcher",
           "default_log_watcher"]
