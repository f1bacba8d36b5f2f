"""Where gcpjobs keeps its files on this machine (docs/architecture.md, "data dir").

Shared by the emulator (its records and job logs) and remote steps (their default artifact
store), which must agree without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "GCPJOBS_DATA_DIR"


def data_dir() -> Path:
    """`$GCPJOBS_DATA_DIR`, else `$XDG_DATA_HOME/gcpjobs`, else `~/.local/share/gcpjobs`."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "gcpjobs"
