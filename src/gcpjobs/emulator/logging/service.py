"""`google.logging.v2.LoggingServiceV2` ListLogEntries and TailLogEntries over job output.

Choices where the documents leave room:

- `resource_names` is required (INVALID_ARGUMENT otherwise), as in the real API; only
  `projects/P` names select anything. A Vertex job's entries belong to the project it was
  created in.
- `order_by` is `timestamp asc` (the default) or `timestamp desc`; entries with the same time
  keep their file and line order. `page_size` defaults to 50 and is capped at 1000; a page
  also stops before 3 MiB (long lines are up to 256 KB an entry, and gRPC clients receive
  4 MiB by default), so it may hold fewer; page tokens are bound to the request (filter,
  resource names, order).
- TailLogEntries streams the entries that match the first request's filter and appear after
  the stream opened (plus, as the real service does, those up to `buffer_window` old; default
  2 s), each once, polling the files every 0.1 s. Requests after the first are ignored.
- Open tails are capped, over gRPC and REST together: 10 per project, Cloud Logging's
  documented limit on open live-tailing sessions, and 100 in all (the emulator's own bound:
  each open tail holds a server thread). A tail past a cap is refused with RESOURCE_EXHAUSTED
  before it streams anything; closing a tail frees its place at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import grpc
from google.cloud.logging_v2 import types as logging_types

from gcpjobs.emulator import clock
from gcpjobs.emulator.errors import ServiceError, invalid
from gcpjobs.emulator.logging.filters import SEVERITIES, Filter, FilterError, parse_filter
from gcpjobs.emulator.logging.sources import Entry, LogFiles
from gcpjobs.emulator.names import is_plain_segment, quoted
from gcpjobs.emulator.paging import InvalidPageToken, decode_page_token, encode_page_token
from gcpjobs.errors import SpecError
from gcpjobs.specs.container import check_project

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Under gRPC's default 4 MiB receive limit, with room for the response's own fields.
MAX_PAGE_BYTES = 3 * 1024 * 1024
TAIL_POLL_SECONDS = 0.1
MAX_TAILS_PER_PROJECT = 10  # "Number of open live-tailing sessions: 10 per Google Cloud project"
MAX_OPEN_TAILS = 100  # the gRPC server keeps a thread for each on top of its unary workers
_ORDERS = {"": False, "timestamp asc": False, "timestamp desc": True}
MAX_RESOURCE_NAMES = 100  # ListLogEntriesRequest: "A maximum of 100 resources may be specified"
_PARENT_KINDS = ("projects", "organizations", "folders", "billingAccounts")
_OTHER_PARENT_ID = {
    "organizations": re.compile(r"[0-9]{1,20}\Z"), "folders": re.compile(r"[0-9]{1,20}\Z"),
    "billingAccounts": re.compile(r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}\Z"),
}
# Filter equalities whose values name directories of the data dir (see LogFiles._sources).
_PATH_PINS = ("resource.labels.job_id", "resource.labels.job_name", "resource.labels.location",
              "labels.run.googleapis.com/execution_name")


def _projects(resource_names: Any) -> list[str]:
    names = list(resource_names)
    if not names:
        raise invalid("resource_names is required: name at least one, e.g. \"projects/my-project\"")
    if len(names) > MAX_RESOURCE_NAMES:
        raise invalid(f"At most {MAX_RESOURCE_NAMES} resource_names are allowed; got {len(names)}")
    projects = []
    for name in names:
        parts = name.split("/")
        if len(parts) == 8 and parts[2::2] == ["locations", "buckets", "views"] and all(parts[1::2]):
            parts = parts[:2]  # a log view of the project: the project's entries
        if len(parts) != 2 or parts[0] not in _PARENT_KINDS or not parts[1]:
            raise invalid(f"Invalid resource name {quoted(name)}: use \"projects/PROJECT_ID\"")
        if parts[0] == "projects":
            try:
                check_project(parts[1])
            except SpecError as error:
                raise invalid(f"Invalid project resource name {quoted(name)}: {error.reason}, "
                               "or a project number") from None
            projects.append(parts[1])
        elif not _OTHER_PARENT_ID[parts[0]].match(parts[1]):
            # organizations/123, folders/456, billingAccounts/012345-6789AB-CDEF01: ids, never paths.
            raise invalid(f"Invalid resource name {quoted(name)}: not a {parts[0]} id")
    return projects


def _pins_can_match(pinned: Mapping[str, str]) -> bool:
    """Whether the ids a filter pins could name a job on disk. The log files are found by
    these ids (directory names); an id that is not a plain name (`..`, a '/', a glob's `*`)
    matches no job, and must never become part of a path."""
    return all(is_plain_segment(pinned[key]) for key in _PATH_PINS if key in pinned)


def _filter(text: str) -> Filter:
    try:
        return parse_filter(text)
    except FilterError as error:
        raise invalid(f"Invalid filter: {error}") from None


_LogEntryPb = logging_types.LogEntry.pb()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _entry_pb(entry: Entry) -> Any:
    """The entry as a raw protobuf message: building it through proto-plus cost tens of µs an
    entry, most of a read of a job that printed thousands of lines."""
    stream = entry.line.stream
    source = entry.source
    pb = _LogEntryPb(log_name=source.log_name(stream), text_payload=entry.line.text,
                     severity=SEVERITIES[entry.severity], insert_id=entry.insert_id)
    pb.resource.type = source.resource_type
    pb.resource.labels.update(source.resource_labels)
    pb.labels.update(source.labels)
    text = entry.line.time
    try:  # RFC 3339 UTC with microseconds, as the runners write it
        moment = datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    except ValueError:  # a damaged line: leave the time unset
        return pb
    delta = moment - _EPOCH
    pb.timestamp.seconds = delta.days * 86400 + delta.seconds
    pb.timestamp.nanos = delta.microseconds * 1000
    pb.receive_timestamp.CopyFrom(pb.timestamp)
    return pb


def to_proto(entry: Entry) -> logging_types.LogEntry:
    return logging_types.LogEntry.wrap(_entry_pb(entry))


class _TailSeats:
    """The open tails, counted per project and in all, under the caps above."""

    def __init__(self, per_project: int, in_all: int) -> None:
        self.per_project = per_project
        self.in_all = in_all
        self._open: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def take(self, projects: list[str]) -> list[str]:
        """Seat one tail over `projects`; returns what `give_back` needs, or raises
        RESOURCE_EXHAUSTED (nothing taken)."""
        wanted = sorted(set(projects))
        with self._lock:
            for project in wanted:
                if self._open.get(project, 0) >= self.per_project:
                    raise ServiceError(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f'Quota exceeded for project "{project}": the number of open live-tailing '
                        f"sessions is limited to {self.per_project} per Google Cloud project")
            if self._total >= self.in_all:
                raise ServiceError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"Quota exceeded: the emulator serves at most {self.in_all} open live-tailing "
                    "sessions; close one and retry")
            for project in wanted:
                self._open[project] = self._open.get(project, 0) + 1
            self._total += 1
        return wanted

    def give_back(self, projects: list[str]) -> None:
        with self._lock:
            for project in projects:
                left = self._open.get(project, 0) - 1
                if left > 0:
                    self._open[project] = left
                else:
                    self._open.pop(project, None)
            self._total -= 1


class _Listings:
    """The matches of a listing that has more pages, kept for the request of its next page.

    Without them, each page of a long read would match every entry again: a follower that
    reads back 20,000 lines in pages of 1,000 would cost twenty full reads. A token that is
    not kept (too old, or an emulator restart) still works, matched again at its offset."""

    def __init__(self, most: int = 32, seconds: float = 60.0) -> None:
        self.most = most
        self.seconds = seconds
        self._kept: OrderedDict[str, tuple[float, list[Entry]]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, token: str, entries: list[Entry]) -> None:
        with self._lock:
            self._kept[token] = (time.monotonic() + self.seconds, entries)
            while len(self._kept) > self.most:
                self._kept.popitem(last=False)

    def take(self, token: str) -> list[Entry] | None:
        with self._lock:
            kept = self._kept.pop(token, None)
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1]


class LoggingService:
    def __init__(self, data_dir: Path, vertex_project: Callable[[str], str | None]) -> None:
        self.files = LogFiles(data_dir, vertex_project)
        self._listings = _Listings()
        self._stopping = threading.Event()
        self.tail_seats = _TailSeats(MAX_TAILS_PER_PROJECT, MAX_OPEN_TAILS)

    def shutdown(self) -> None:
        self._stopping.set()

    def matching(self, projects: list[str], where: Filter, *, descending: bool = False,
                 since: str | None = None) -> list[Entry]:
        """The entries `where` selects, sorted by time; with `since`, the reading may leave
        out blocks of entries older than it (a caller that wants those filters them out)."""
        # Each entry is checked against the alternatives of its own jobs only: a query for a
        # thousand jobs costs what a thousand queries of one would, not a thousand times that.
        found: dict[tuple[str, int], Entry] = {}
        for project in projects:
            for alternative in where.alternatives:
                if not _pins_can_match(alternative.pinned):
                    continue
                floors = [floor for floor in (alternative.floor, since) if floor is not None]
                floor = max(floors) if floors else None
                for entry in self.files.entries(project, alternative.pinned, floor=floor):
                    if alternative.floor is not None and entry.line.time < alternative.floor:
                        continue  # what the predicate would refuse, without building a view
                    if entry.order not in found and alternative.predicate(entry.view()):
                        found[entry.order] = entry
        return sorted(found.values(), key=lambda entry: (entry.line.time, entry.order),
                      reverse=descending)

    def list_log_entries(self, request: logging_types.ListLogEntriesRequest) -> logging_types.ListLogEntriesResponse:
        projects = _projects(request.resource_names)
        where = _filter(request.filter)
        order = request.order_by.strip().lower()
        order = " ".join(order.split())
        if order not in _ORDERS:
            raise invalid(f'Invalid order_by "{request.order_by}": use "timestamp asc" or "timestamp desc"')
        if request.page_size < 0:
            raise invalid("page_size must not be negative")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        scope = f"{sorted(request.resource_names)}|{order}"
        try:
            offset = decode_page_token(request.page_token, request.filter, scope=scope)
        except InvalidPageToken as error:
            raise invalid(str(error)) from None
        entries = self._listings.take(request.page_token) if request.page_token else None
        if entries is None:
            entries = self.matching(projects, where, descending=_ORDERS[order])
        response = logging_types.ListLogEntriesResponse.pb()()
        taken = page_bytes = 0
        for entry in entries[offset: offset + size]:
            built = _entry_pb(entry)
            # A page stops short of MAX_PAGE_BYTES (with at least one entry): 1,000 entries of
            # 256 KB would be 256 MB, past every client's receive limit (gRPC's default is
            # 4 MB). Google's pages may also hold fewer entries than page_size.
            page_bytes += built.ByteSize() + 8  # the field's tag and length
            if taken and page_bytes > MAX_PAGE_BYTES:
                break
            response.entries.append(built)
            taken += 1
        end = offset + taken
        if end < len(entries):
            response.next_page_token = encode_page_token(end, request.filter, scope=scope)
            self._listings.keep(response.next_page_token, entries)
        return logging_types.ListLogEntriesResponse.wrap(response)

    def tail_log_entries(
        self, requests: Iterator[logging_types.TailLogEntriesRequest]
    ) -> Iterator[logging_types.TailLogEntriesResponse | None]:
        """Responses with new entries; None between polls (the transport checks the stream is
        still open, and sends nothing)."""
        try:
            first = next(requests)
        except StopIteration:
            return
        projects = _projects(first.resource_names)
        where = _filter(first.filter)
        window = first.buffer_window.total_seconds() if "buffer_window" in first else 2.0
        if not 0 <= window <= 60:
            raise invalid("buffer_window must be between 0 and 60000 milliseconds")
        start = clock.rfc3339(clock.now() - timedelta(seconds=window))
        seated = self.tail_seats.take(projects)
        try:  # the seat is given back however the stream ends: closed, cancelled, shut down
            sent: set[str] = set()
            while not self._stopping.is_set():
                fresh = [entry for entry in self.matching(projects, where, since=start)
                         if entry.line.time >= start and entry.insert_id not in sent]
                if fresh:
                    sent.update(entry.insert_id for entry in fresh)
                    yield logging_types.TailLogEntriesResponse(entries=[to_proto(entry) for entry in fresh])
                else:
                    yield None
                # An Event, not a sleep: a shutdown ends every open tail at once.
                self._stopping.wait(TAIL_POLL_SECONDS)
        finally:
            self.tail_seats.give_back(seated)
