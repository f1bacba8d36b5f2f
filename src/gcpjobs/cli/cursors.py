"""Where `gcpjobs run` / `attach` stopped showing a job's log lines on this machine, so that a
later one goes on from there (one small JSON file per job under the data dir).

Its own module so that `follow` (which shows the lines) and `logs_commands` (which prints
them for `gcpjobs logs`) need not import each other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gcpjobs.clients.logs import LogCursor


def _cursor_path(name: str) -> Path:
    from gcpjobs.paths import data_dir

    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return data_dir() / "log-cursors" / f"{digest}.json"


def load_cursor(name: str) -> LogCursor:
    """Where the last `gcpjobs run` / `attach` of job `name` on this machine stopped showing
    its lines (a fresh cursor if none did, or the saved one is unreadable)."""
    from gcpjobs.clients.logs import LogCursor

    try:
        return LogCursor.from_json(json.loads(_cursor_path(name).read_text()))
    except (OSError, ValueError):
        return LogCursor()


def save_cursor(name: str, cursor: LogCursor) -> None:
    """Remember how far job `name`'s lines were shown; best effort (a read-only home only
    means a later attach shows some lines again)."""
    path = _cursor_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(cursor.to_json()))
        temporary.replace(path)
    except OSError:
        pass
