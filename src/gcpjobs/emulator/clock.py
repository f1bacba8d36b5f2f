"""The emulator's one clock and the one way it writes a moment as text.

Every record, operation and log line is stamped from `now()` and written by `rfc3339`, so the
times a client reads back from any service sort and compare the same way (UTC, microseconds,
a trailing "Z", as Google's APIs write them).
"""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_now() -> str:
    return rfc3339(now())
