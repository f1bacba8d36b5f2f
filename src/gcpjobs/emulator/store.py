"""SQLite records of jobs, Cloud Run resources and long-running operations, so that an emulator restart keeps them.

The store knows nothing about protos: the service hands it serialized messages plus the few
columns worth querying. One connection guarded by a lock (the emulator's writes are small and
few; WAL keeps readers of the file, e.g. a debugging `sqlite3`, out of the writer's way).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATABASE_FILE = "emulator.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    state TEXT NOT NULL,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    labels TEXT NOT NULL,
    proto BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    name TEXT PRIMARY KEY,
    create_time TEXT NOT NULL,
    proto BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    create_time TEXT NOT NULL,
    proto BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class StoredJob:
    name: str
    job_id: str
    project: str
    location: str
    state: str  # JobState name, e.g. "JOB_STATE_RUNNING"
    create_time: str  # RFC 3339
    update_time: str
    labels: Mapping[str, str]
    proto: bytes  # a serialized google.cloud.aiplatform.v1.CustomJob


class JobStore:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DATABASE_FILE
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL loses at most the last transactions on power loss, never corrupts: enough for
        # an emulator, and much faster than FULL for every state change.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put_job(self, job: StoredJob) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.name,
                    job.job_id,
                    job.project,
                    job.location,
                    job.state,
                    job.create_time,
                    job.update_time,
                    json.dumps(dict(job.labels), sort_keys=True),
                    job.proto,
                ),
            )

    def delete_job(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE name = ?", (name,))

    def load_jobs(self) -> list[StoredJob]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, job_id, project, location, state, create_time, update_time, "
                "labels, proto FROM jobs ORDER BY create_time"
            ).fetchall()
        return [
            StoredJob(
                name=row[0],
                job_id=row[1],
                project=row[2],
                location=row[3],
                state=row[4],
                create_time=row[5],
                update_time=row[6],
                labels=json.loads(row[7]),
                proto=bytes(row[8]),
            )
            for row in rows
        ]

    def put_operation(self, name: str, create_time: str, proto: bytes) -> None:
        """Insert, or replace the proto of, an operation; its first create_time is kept."""
        with self._lock:
            self._db.execute(
                "INSERT INTO operations VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET proto = excluded.proto",
                (name, create_time, proto),
            )

    def delete_operation(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM operations WHERE name = ?", (name,))

    # Other services' records (Cloud Run jobs and executions): a serialized proto per name, of a
    # `kind` the service chooses, loaded back oldest first.

    def put_resource(self, kind: str, name: str, create_time: str, proto: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?)",
                (name, kind, create_time, proto),
            )

    def delete_resource(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM resources WHERE name = ?", (name,))

    def load_resources(self, kind: str) -> list[bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT proto FROM resources WHERE kind = ? ORDER BY create_time, name", (kind,)
            ).fetchall()
        return [bytes(row[0]) for row in rows]

    def get_operation(self, name: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT proto FROM operations WHERE name = ?", (name,)
            ).fetchone()
        return bytes(row[0]) if row else None

    def list_operations(self, prefix: str) -> list[bytes]:
        """Operations whose name starts with `prefix` (`projects/P/locations/L/operations/`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT proto FROM operations WHERE substr(name, 1, ?) = ? ORDER BY create_time",
                (len(prefix), prefix),
            ).fetchall()
        return [bytes(row[0]) for row in rows]

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs")
            self._db.execute("DELETE FROM operations")
            self._db.execute("DELETE FROM resources")
