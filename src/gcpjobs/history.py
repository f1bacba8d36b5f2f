"""The local run history: what gcpjobs submitted from this machine, and how each run ended.

The client layer records every job it creates (`record_submission`, in each client's `create`)
and every final state it sees (`record_status`, in `wait` and `finish`). The CLI reads it back
when the service no longer has a run (a Cloud Run Job that was not kept is deleted with its
executions; a Vertex job can be deleted), so `gcpjobs status`, `logs` and `step result` of the
name a run printed still answer, saying the answer is local; `gcpjobs history` lists it.

It is a cache, never the source of truth: while the service has the resource, the service's
answer is the one shown. It holds names, times, states, labels and a sha256 digest of each
create request; never an environment value, an argument or a secret (a remote step's run URL
and the *name* of its key's Secret Manager version are kept: they are where its outcome is,
not secrets).

One SQLite file, `DATA_DIR/history/runs.sqlite3` (0600, in a 0700 directory), in WAL mode so
that many gcpjobs processes (CLI commands, Prefect workers, notebooks) write at once; each
write is one short transaction that also prunes all but the newest `KEEP_RUNS` runs. Every
operation is best effort: a history that cannot be written (a read-only home, a locked file)
is logged once and never fails a submission.

Standard library only, plus gcpjobs' own plain types; it never imports the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gcpjobs.kinds import given_name_of
from gcpjobs.paths import data_dir
from gcpjobs.results import JobError, JobStatus, TaskCounts
from gcpjobs.states import JobState
from gcpjobs.stepnames import ENTRYPOINT_MODULE, KEY_SECRET_ENV

if TYPE_CHECKING:
    from gcpjobs.clients.target import Target

logger = logging.getLogger("gcpjobs.history")

KEEP_RUNS = 1000
# Long enough to outlast any other process's write (each is one small transaction).
BUSY_TIMEOUT_SECONDS = 30.0
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    project TEXT NOT NULL,
    region TEXT NOT NULL,
    display_name TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    spec_digest TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,
    step_run_url TEXT,
    step_key_secret TEXT,
    UNIQUE (target, name)
);
CREATE INDEX IF NOT EXISTS runs_by_display_name ON runs (target, display_name);
"""


def history_path() -> Path:
    """`DATA_DIR/history/runs.sqlite3` (see `gcpjobs.paths.data_dir`)."""
    return data_dir() / "history" / "runs.sqlite3"


def target_key(target: Target) -> str:
    """Which service a run was sent to, as the history files it: an emulator by its address
    (two emulators both name their first job `.../customJobs/1`), Google Cloud as `gcp` (the
    project is in every resource name)."""
    return f"emulator {target.grpc_address}" if target.is_emulator else "gcp"


def request_digest(serialized: bytes) -> str:
    """The spec digest of a create request: sha256 of its deterministic wire bytes. It tells
    whether two runs were the same request without keeping what was in it."""
    return "sha256:" + hashlib.sha256(serialized).hexdigest()


@dataclass(frozen=True)
class StepPointer:
    """Where a remote step's outcome is: its run URL and its key's secret version name."""

    run_url: str
    key_secret: str


def step_pointer(command: list[str], args: list[str], env: Mapping[str, object]) -> StepPointer | None:
    """The `StepPointer` of a job whose container runs a remote step, else None."""
    key_secret = env.get(KEY_SECRET_ENV)
    if command[-2:] != ["-m", ENTRYPOINT_MODULE] or len(args) != 1 or not isinstance(key_secret, str):
        return None
    return StepPointer(run_url=args[0], key_secret=key_secret)


@dataclass(frozen=True)
class RunRecord:
    """One run as the history holds it. `status` is the last status recorded (the final one
    once `ended_at` is set)."""

    target: str
    name: str
    kind: str
    project: str
    region: str
    display_name: str
    submission_id: str
    spec_digest: str
    created_at: datetime
    state: JobState
    ended_at: datetime | None
    status: JobStatus
    step: StepPointer | None

    @property
    def job_id(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def ended(self) -> bool:
        return self.state.is_terminal

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "project": self.project,
            "region": self.region,
            "displayName": self.display_name,
            "submissionId": self.submission_id,
            "specDigest": self.spec_digest,
            "createTime": self.created_at.isoformat(),
            "state": self.state.value,
            "endTime": self.ended_at.isoformat() if self.ended_at else None,
        }


# ---------------------------------------------------------------------- status <-> JSON


def _stamp(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment else None


def _moment(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def status_to_json(status: JobStatus) -> str:
    return json.dumps({
        "name": status.name,
        "displayName": status.display_name,
        "state": status.state.value,
        "kind": status.kind,
        "createTime": _stamp(status.create_time),
        "startTime": _stamp(status.start_time),
        "endTime": _stamp(status.end_time),
        "updateTime": _stamp(status.update_time),
        "error": ({"code": status.error.code, "message": status.error.message}
                  if status.error else None),
        "labels": dict(status.labels),
        "webAccessUris": dict(status.web_access_uris),
        "tasks": vars(status.tasks) if status.tasks else None,
    })


def status_from_json(text: str) -> JobStatus:
    data = json.loads(text)
    error = data.get("error")
    tasks = data.get("tasks")
    return JobStatus(
        name=data["name"],
        display_name=data["displayName"],
        state=JobState(data["state"]),
        kind=data["kind"],
        create_time=_moment(data.get("createTime")),
        start_time=_moment(data.get("startTime")),
        end_time=_moment(data.get("endTime")),
        update_time=_moment(data.get("updateTime")),
        error=JobError(code=int(error["code"]), message=str(error["message"])) if error else None,
        labels=MappingProxyType(dict(data.get("labels") or {})),
        web_access_uris=MappingProxyType(dict(data.get("webAccessUris") or {})),
        tasks=TaskCounts(**tasks) if tasks else None,
    )


def _location_of(name: str) -> tuple[str, str]:
    """`projects/P/locations/R/...` -> (P, R)."""
    parts = name.split("/")
    return (parts[1], parts[3]) if len(parts) > 3 else ("", "")


# ------------------------------------------------------------------------------ the store


class RunHistory:
    """The history file at `path` (default `history_path()`), keeping the newest `keep` runs.

    Each call opens its own connection, so one object serves every thread and event loop of
    a process, and several processes share the file.
    """

    def __init__(self, path: Path | str | None = None, *, keep: int = KEEP_RUNS) -> None:
        self.path = Path(path) if path is not None else history_path()
        self.keep = keep

    @contextlib.contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write:
            self._prepare_file()
        elif not self.path.exists():
            raise FileNotFoundError(self.path)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS,
                                     isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            if write:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                # IMMEDIATE: take the write lock now, so two writers queue on the busy
                # timeout instead of one failing when it upgrades a read lock.
                connection.execute("BEGIN IMMEDIATE")
                if connection.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            connection.execute(statement)
                    connection.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            if connection.in_transaction:
                connection.execute("COMMIT")
        finally:
            connection.close()

    def _prepare_file(self) -> None:
        """The 0700 directory and the 0600 file, made before SQLite opens it (SQLite gives
        its -wal and -shm files the database file's permissions)."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if directory.stat().st_mode & 0o077:
            directory.chmod(0o700)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_mode & 0o077:
                os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)

    # -------------------------------------------------------------------------- writing

    def record_submission(
        self, *, target: str, status: JobStatus, submission_id: str, spec_digest: str,
        step: StepPointer | None = None,
    ) -> None:
        """A run was created: `status` is the service's reply to the create."""
        project, region = _location_of(status.name)
        created = status.create_time or datetime.now(timezone.utc)
        with self._connect(write=True) as connection:
            # A name seen before on this target is a new resource with a reused name (an
            # emulator started afresh): the old one is gone, the new one replaces it.
            connection.execute(
                "INSERT OR REPLACE INTO runs (target, name, kind, project, region, display_name,"
                " submission_id, spec_digest, created_at, state, ended_at, status, step_run_url,"
                " step_key_secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (target, status.name, status.kind, project, region, status.display_name,
                 submission_id, spec_digest, _stamp(created), status.state.value,
                 _stamp(status.end_time) if status.is_terminal else None,
                 status_to_json(status), step.run_url if step else None,
                 step.key_secret if step else None),
            )
            connection.execute(
                "DELETE FROM runs WHERE id <= (SELECT id FROM runs ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)", (self.keep,),
            )

    def record_status(self, *, target: str, status: JobStatus) -> bool:
        """A run's newer status (its end, normally); True if the history holds that run.
        A run that has already ended keeps its first final status."""
        if not self.path.exists():
            return False
        with self._connect(write=True) as connection:
            cursor = connection.execute(
                "UPDATE runs SET state = ?, ended_at = ?, status = ? WHERE target = ? AND"
                " name = ? AND ended_at IS NULL",
                (status.state.value, _stamp(status.end_time or datetime.now(timezone.utc))
                 if status.is_terminal else None, status_to_json(status), target, status.name),
            )
            return cursor.rowcount > 0

    # -------------------------------------------------------------------------- reading

    def awaits_end(self, *, target: str, name: str) -> bool:
        """Whether the history holds the run `name` and not yet how it ended."""
        if not self.path.exists():
            return False
        return any(not record.ended for record in self.lookup(name, target=target))

    def recent(self, limit: int | None = None, *, target: str | None = None) -> list[RunRecord]:
        """The newest runs first (of `target` only, if given)."""
        query = "SELECT * FROM runs"
        parameters: list[object] = []
        if target is not None:
            query += " WHERE target = ?"
            parameters.append(target)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            parameters.append(limit)
        return self._select(query, parameters)

    def lookup(self, name: str, *, target: str, region: str | None = None) -> list[RunRecord]:
        """The runs of `target` that `name` means, newest first: a full resource name, a job
        or execution id, or the name the user gave (a Vertex display name, a Cloud Run job
        id, with or without the submission suffix gcpjobs adds). A name that is not a full
        resource name is looked up in `region` only, when given, as the service would."""
        text = name.strip()
        if text.startswith("projects/"):
            return self._select("SELECT * FROM runs WHERE target = ? AND name = ? ORDER BY id"
                                " DESC", [target, text])
        query = ("SELECT * FROM runs WHERE target = ? AND (name LIKE ? ESCAPE '\\' OR"
                 " display_name = ? OR display_name LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE"
                 " '\\' OR name LIKE ? ESCAPE '\\')")
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parameters: list[object] = [
            target, f"%/{escaped}", text, f"{escaped}-%", f"%/jobs/{escaped}/executions/%",
            f"%/jobs/{escaped}-%/executions/%",
        ]
        if region is not None:
            query += " AND region = ?"
            parameters.append(region)
        candidates = self._select(query + " ORDER BY id DESC", parameters)
        return [record for record in candidates if _answers_to(record, text)]

    def _select(self, query: str, parameters: list[object]) -> list[RunRecord]:
        try:
            with self._connect(write=False) as connection:
                rows = connection.execute(query, parameters).fetchall()
        except FileNotFoundError:
            return []
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):  # made, never written
                return []
            raise
        return [_record(row) for row in rows]


def _answers_to(record: RunRecord, name: str) -> bool:
    """Whether `name` means this run (the LIKE patterns only narrow the rows down): its id,
    or the name it was given with or without the suffix from its submission id."""
    if record.job_id == name:
        return True
    given = given_name_of(record.kind, record.display_name, record.name)
    if given == name:
        return True
    base, dash, suffix = given.rpartition("-")
    return bool(dash and suffix) and base == name and record.submission_id.startswith(suffix)


def _record(row: sqlite3.Row) -> RunRecord:
    created = _moment(row["created_at"])
    assert created is not None
    step = (StepPointer(run_url=row["step_run_url"], key_secret=row["step_key_secret"])
            if row["step_run_url"] and row["step_key_secret"] else None)
    return RunRecord(
        target=row["target"], name=row["name"], kind=row["kind"], project=row["project"],
        region=row["region"], display_name=row["display_name"],
        submission_id=row["submission_id"], spec_digest=row["spec_digest"],
        created_at=created, state=JobState(row["state"]), ended_at=_moment(row["ended_at"]),
        status=status_from_json(row["status"]), step=step,
    )


# ------------------------------------------------------------- the client layer's hooks

_warned = threading.Event()


def _warn_once(what: str, error: BaseException) -> None:
    if not _warned.is_set():
        _warned.set()
        logger.warning("the local run history (%s) could not %s: %s; runs are not recorded "
                       "there", history_path(), what, error)


def record_submission(
    *, target: str, status: JobStatus, submission_id: str, spec_digest: str,
    step: StepPointer | None = None,
) -> None:
    """`RunHistory().record_submission`, best effort (see the module)."""
    try:
        RunHistory().record_submission(target=target, status=status,
                                       submission_id=submission_id, spec_digest=spec_digest,
                                       step=step)
    except (OSError, sqlite3.Error) as error:
        _warn_once("record a submission", error)


def awaits_end(*, target: str, name: str) -> bool:
    """`RunHistory().awaits_end`; False when the history cannot be read."""
    try:
        return RunHistory().awaits_end(target=target, name=name)
    except (OSError, sqlite3.Error) as error:
        _warn_once("be read", error)
        return False


def record_status(*, target: str, status: JobStatus) -> None:
    """`RunHistory().record_status` of a final status, best effort (see the module)."""
    if not status.is_terminal:
        return
    try:
        RunHistory().record_status(target=target, status=status)
    except (OSError, sqlite3.Error) as error:
        _warn_once("record how a run ended", error)
