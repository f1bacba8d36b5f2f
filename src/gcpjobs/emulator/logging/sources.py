"""Job output as Cloud Logging entries, read from the JSONL files the runners keep.

Vertex: `DATA_DIR/jobs/ID/logs/REPLICA.jsonl` (`workerpool0-0`, ..., and `service`, the
emulator's notes). Cloud Run: `DATA_DIR/executions/PROJECT/LOCATION/EXECUTION/logs/`
`task-I-attempt-N.jsonl` and `service.jsonl`. Each line is `{"time", "stream", "text"}`.

Entries are shaped like the real ones:

- Vertex: `resource {type: "ml_job", labels: {job_id, project_id, task_name}}`, `log_name`
  `projects/P/logs/REPLICA` (the emulator's notes: `projects/P/logs/ml.googleapis.com%2FID`,
  task_name `service`), severity INFO for stdout, ERROR for stderr.
- Cloud Run: `resource {type: "cloud_run_job", labels: {job_name, location, project_id}}`,
  labels `run.googleapis.com/execution_name`, `run.googleapis.com/task_index`,
  `run.googleapis.com/task_attempt`; `log_name` `projects/P/logs/run.googleapis.com%2Fstdout`
  (`...%2Fstderr`; the emulator's notes `...%2Fvarlog%2Fsystem`); severity DEFAULT for stdout
  (as Cloud Run gives unstructured stdout), ERROR for stderr.

The insert id is derived from the file and the line number (`ID.REPLICA.000042`), so it is the
same on every read: a reader that resumes can tell exactly which lines it has seen.

Reads stay bounded however long a job runs and however fast it prints: each file is indexed
incrementally (only the bytes appended since the last read are parsed) in blocks of
`BLOCK_LINES` lines, each block remembering where it lies in the file and its latest time. A
read for the lines from a time on (a follower asks for its last few seconds) parses only the
blocks that reach that time; parsed blocks are kept in a small cache shared by every file
(`CACHED_BLOCKS`), the rest is read again from disk when asked for. So memory holds a few
numbers per block, not every line, and a poll costs what it returns, not the job's history.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gcpjobs.emulator.logging.filters import EntryView

SEVERITY_OF_STREAM = {"stderr": "ERROR", "service": "INFO"}
BLOCK_LINES = 500
CACHED_BLOCKS = 200  # parsed blocks kept, over all files: 100,000 lines at most
_DAMAGED_TIME = "1970-01-01T00:00:00.000000Z"
_TASK_FILE = re.compile(r"^task-(\d+)-attempt-(\d+)$")


@dataclass(frozen=True)
class Line:
    time: str  # RFC 3339 UTC with microseconds (fixed width: sorts as text)
    stream: str
    text: str
    number: int  # 1-based line number in its file


@dataclass(frozen=True)
class Source:
    """One JSONL file and what its entries say about themselves."""

    path: Path
    project: str
    owner: str  # job id or execution id (the insert id's prefix)
    log_base: str  # "REPLICA" (Vertex) or "run.googleapis.com" (Cloud Run)
    resource_type: str
    resource_labels: dict[str, str]
    labels: dict[str, str]
    cloud_run: bool

    def log_name(self, stream: str) -> str:
        if not self.cloud_run:
            name = f"ml.googleapis.com%2F{self.owner}" if stream == "service" else self.log_base
        elif stream == "service":
            name = "run.googleapis.com%2Fvarlog%2Fsystem"
        else:
            name = f"run.googleapis.com%2F{'stderr' if stream == 'stderr' else 'stdout'}"
        return f"projects/{self.project}/logs/{name}"

    def severity(self, stream: str) -> str:
        return SEVERITY_OF_STREAM.get(stream, "DEFAULT" if self.cloud_run else "INFO")


@dataclass(frozen=True)
class Entry:
    source: Source
    line: Line
    order: tuple[str, int]  # tie-break after the time: file, line

    @property
    def insert_id(self) -> str:
        return f"{self.source.owner}.{self.source.path.stem}.{self.line.number:06d}"

    @property
    def severity(self) -> str:
        return self.source.severity(self.line.stream)

    def view(self) -> EntryView:
        return EntryView(
            fields={
                "resource.type": self.source.resource_type,
                "logName": self.source.log_name(self.line.stream),
                "log_name": self.source.log_name(self.line.stream),
                "severity": self.severity,
                "timestamp": self.line.time,
                "receiveTimestamp": self.line.time,
                "receive_timestamp": self.line.time,
                "insertId": self.insert_id,
                "insert_id": self.insert_id,
            },
            labels=self.source.labels,
            resource_labels=self.source.resource_labels,
            text=self.line.text,
        )


@dataclass
class _Block:
    """Lines `first` to `first + count - 1` of a file, at bytes `start` to `end`."""

    start: int
    end: int
    first: int
    count: int
    latest: str  # the latest time among its lines


@dataclass
class _Index:
    """How far a file has been read, and its blocks (the last one may still grow)."""

    offset: int = 0
    blocks: list[_Block] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.blocks[-1].first + self.blocks[-1].count - 1 if self.blocks else 0


def _parse(raw: bytes, number: int) -> Line:
    try:
        item = json.loads(raw)
        return Line(str(item["time"]), str(item["stream"]), str(item["text"]), number)
    except (ValueError, KeyError, TypeError):  # cut short by a crash
        return Line(_DAMAGED_TIME, "stderr", raw.decode(errors="replace"), number)


class LogFiles:
    """Finds the job log files under a data dir and reads them incrementally, within bounded
    memory (thread-safe; see the module)."""

    def __init__(self, data_dir: Path, vertex_project: Callable[[str], str | None]) -> None:
        self.data_dir = data_dir
        self._vertex_project = vertex_project
        self._indexes: dict[Path, _Index] = {}
        self._parsed: OrderedDict[tuple[Path, int], list[Line]] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self, project: str, pinned: Mapping[str, str], *,
                floor: str | None = None) -> Iterator[Entry]:
        """Every entry of `project` the pinned equalities of a filter allow, unsorted; with a
        `floor`, blocks whose lines are all older than it may be left out."""
        for source in self._sources(project, pinned):
            for line in self._read(source.path, floor):
                yield Entry(source, line, (str(source.path), line.number))
    def _sources(self, project: str, pinned: Mapping[str, str]) -> Iterator[Source]:
        kind = pinned.get("resource.type")
        if kind in (None, "ml_job") and "resource.labels.job_name" not in pinned:
            yield from self._vertex_sources(project, pinned.get("resource.labels.job_id"))
        if kind in (None, "cloud_run_job") and "resource.labels.job_id" not in pinned:
            yield from self._cloud_run_sources(
                project, pinned.get("resource.labels.job_name"),
                pinned.get("labels.run.googleapis.com/execution_name"),
                pinned.get("resource.labels.location"),
            )

    def _vertex_sources(self, project: str, job_id: str | None) -> Iterator[Source]:
        root = self.data_dir / "jobs"
        directories = [root / job_id] if job_id else sorted(root.glob("*"))
        for directory in directories:
            owner = directory.name
            if (self._vertex_project(owner) or project) != project:
                continue
            for path in sorted((directory / "logs").glob("*.jsonl")):
                replica = path.stem
                yield Source(
                    path=path, project=project, owner=owner, log_base=replica,
                    resource_type="ml_job",
                    resource_labels={"job_id": owner, "project_id": project, "task_name": replica},
                    labels={}, cloud_run=False,
                )

    def _cloud_run_sources(self, project: str, job_name: str | None, execution: str | None,
                           location: str | None) -> Iterator[Source]:
        root = self.data_dir / "executions" / project
        pattern = f"{location or '*'}/{execution or (job_name + '-*' if job_name else '*')}"
        for directory in sorted(root.glob(pattern)):
            execution_id = directory.name
            job = execution_id.rsplit("-", 1)[0]  # executions are named JOB-xxxxx
            if job_name is not None and job != job_name:
                continue
            for path in sorted((directory / "logs").glob("*.jsonl")):
                labels = {"run.googleapis.com/execution_name": execution_id}
                task = _TASK_FILE.match(path.stem)
                if task is not None:
                    labels["run.googleapis.com/task_index"] = task.group(1)
                    labels["run.googleapis.com/task_attempt"] = task.group(2)
                yield Source(
                    path=path, project=project, owner=execution_id, log_base="run.googleapis.com",
                    resource_type="cloud_run_job",
                    resource_labels={"job_name": job, "location": directory.parent.name,
                                     "project_id": project},
                    labels=labels, cloud_run=True,
                )

    def _read(self, path: Path, floor: str | None = None) -> list[Line]:
        """The file's complete lines so far (a line still being written waits for its
        newline), but for whole blocks older than `floor`."""
        with self._lock:
            index = self._update(path)
            if index is None:
                return []
            lines: list[Line] = []
            for block in index.blocks:
                if floor is None or block.latest >= floor:
                    lines.extend(self._block_lines(path, block))
            return lines

    def _update(self, path: Path) -> _Index | None:
        """Index what was appended to the file since the last read (under the lock)."""
        index = self._indexes.setdefault(path, _Index())
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            self._forget(path)
            return None
        if size < index.offset:  # replaced (a reset): start again
            self._forget(path)
            index = self._indexes[path] = _Index()
        if size == index.offset:
            return index
        with path.open("rb") as handle:
            handle.seek(index.offset)
            data = handle.read(size - index.offset)
        complete = data.rfind(b"\n") + 1
        position = index.offset
        for raw in data[:complete].split(b"\n")[:-1]:
            line = _parse(raw, index.lines + 1)
            last = index.blocks[-1] if index.blocks else None
            if last is None or last.count >= BLOCK_LINES:
                last = _Block(position, position, line.number, 0, line.time)
                index.blocks.append(last)
            last.count += 1
            last.end = position + len(raw) + 1
            last.latest = max(last.latest, line.time)
            cached = self._parsed.get((path, last.start))
            if cached is not None:  # keep a cached growing block whole
                cached.append(line)
            position += len(raw) + 1
        index.offset += complete
        return index

    def _block_lines(self, path: Path, block: _Block) -> list[Line]:
        key = (path, block.start)
        lines = self._parsed.get(key)
        if lines is not None and len(lines) == block.count:
            self._parsed.move_to_end(key)
            return lines
        with path.open("rb") as handle:
            handle.seek(block.start)
            data = handle.read(block.end - block.start)
        lines = [_parse(raw, block.first + number)
                 for number, raw in enumerate(data.split(b"\n")[:block.count])]
        self._parsed[key] = lines
        while len(self._parsed) > CACHED_BLOCKS:
            self._parsed.popitem(last=False)
        return lines

    def _forget(self, path: Path) -> None:
        self._indexes.pop(path, None)
        for key in [key for key in self._parsed if key[0] == path]:
            del self._parsed[key]
