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
