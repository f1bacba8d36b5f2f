"""A log cursor survives a restart (saved as JSON by `gcpjobs run`, read by `gcpjobs attach`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gcpjobs.clients.logs import LogCursor, LogLine


def line(seconds: float, insert_id: str) -> LogLine:
    when = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    return LogLine(timestamp=when, source="workerpool0-0", text=insert_id, stderr=False,
                   insert_id=insert_id)


def test_a_saved_cursor_skips_exactly_what_the_original_had_seen() -> None:
    cursor = LogCursor()
    for index in range(5):
        assert cursor.take(line(index * 0.5, f"id-{index}"))
    restored = LogCursor.from_json(cursor.to_json())
    assert restored == cursor
    assert restored.start() == cursor.start()
    assert not restored.take(line(2.0, "id-4"))  # seen before the restart
    assert restored.take(line(2.0, "id-5"))  # same time, new line


@pytest.mark.parametrize("data", [None, {}, [], "x", {"overlap": 2, "newest": "yesterday",
                                                          "seen": {}},
                                  {"overlap": "a", "newest": None, "seen": {}},
                                  {"overlap": 2, "newest": None, "seen": {"a": 3}}])
def test_anything_else_is_a_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match="not a saved log cursor"):
        LogCursor.from_json(data)


def test_a_read_reaches_back_at_least_as_far_as_lines_arrive_late() -> None:
    cursor = LogCursor(overlap=2.0)
    for index in range(30):
        cursor.take(line(index, f"id-{index}"))
    newest = line(29, "x").timestamp
    # GCP: lines reach Logging up to 10 s late, so the read starts 10 s back and still
    # knows the ids it has seen there (a late line between them is not skipped).
    assert cursor.start(at_least=10.0) == newest - timedelta(seconds=10)
    assert set(cursor.seen) == {f"id-{index}" for index in range(19, 30)}
    assert cursor.take(line(20.5, "late"))
    assert not cursor.take(line(20, "id-20"))
    assert cursor.start() == newest - timedelta(seconds=2)
