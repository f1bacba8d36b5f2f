"""The Logging filter subset (pure functions)."""

from __future__ import annotations

import pytest

from gcpjobs.emulator.logging.filters import EntryView, Filter, FilterError, parse_filter


def view(**fields: str) -> EntryView:
    base = {"resource.type": "ml_job", "severity": "INFO", "timestamp": "2026-01-01T00:00:01.000000Z",
            "insertId": "a.b.000001", "logName": "projects/p/logs/workerpool0-0"}
    base.update(fields)
    return EntryView(base, {"run.googleapis.com/task_index": "1"}, {"job_id": "42"}, "Hello World")


@pytest.mark.parametrize(("text", "expected"), [
    ("", True),
    ('resource.type="ml_job"', True),
    ('resource.type="cloud_run_job"', False),
    ('resource.labels.job_id="42" AND severity>=INFO', True),
    ("severity>=WARNING", False),
    ("severity<=200", True),
    ('labels."run.googleapis.com/task_index"="1"', True),
    ('timestamp>"2026-01-01T00:00:00Z"', True),
    ('timestamp>"2026-01-01T00:00:01Z"', False),
    ('timestamp>="2026-01-01T00:00:01.000000000Z"', True),
    ('timestamp<="2026-01-01T01:00:01+01:00"', True),
    ('timestamp<"2026-01-01T01:00:01+01:00"', False),
    ('textPayload:"hello"', True),
    ('textPayload=~"^Hel+o"', True),
    ('NOT textPayload:"hello"', False),
    ('-severity=INFO', False),
    ("world", True),
    # OR binds tighter than AND in the Logging query language
    ('resource.type="x" AND severity=INFO OR severity=ERROR', False),
    ('severity=ERROR OR severity=INFO resource.type="ml_job"', True),
    ('(resource.type="x" OR resource.type="ml_job") insertId>"a.b.000000"', True),
    ('jsonPayload.message="x"', False),
    ('jsonPayload.message!="x"', True),
])
def test_matches(text: str, expected: bool) -> None:
    assert parse_filter(text).matches(view()) is expected


def pins(parsed: Filter) -> list[dict[str, str]]:
    return [dict(alternative.pinned) for alternative in parsed.alternatives]


def test_pinned_equalities_narrow_reads() -> None:
    parsed = parse_filter('resource.type="ml_job" resource.labels.job_id="42" severity>=ERROR')
    assert pins(parsed) == [{"resource.type": "ml_job", "resource.labels.job_id": "42"}]
    assert pins(parse_filter('resource.labels.job_id="1" OR resource.labels.job_id="2"')) == [{}]


def test_pinned_alternatives_of_an_or_of_groups() -> None:
    """The shape gcpjobs' log watcher sends: each group narrows the read on its own."""
    parsed = parse_filter('(resource.type="ml_job" resource.labels.job_id="1" '
                          'timestamp>="2025-01-01T00:00:00Z") OR (resource.type="cloud_run_job" '
                          'labels."run.googleapis.com/execution_name"="j-x")')
    assert pins(parsed) == [
        {"resource.type": "ml_job", "resource.labels.job_id": "1"},
        {"resource.type": "cloud_run_job", "labels.run.googleapis.com/execution_name": "j-x"}]
    # Anything else may match any entry: nothing is narrowed.
    for text in ('(a="1") b="2"', '(a="1" OR b="2") OR (c="3")', '((a="1")) OR (b="2")',
                 'NOT (a="1") OR (b="2")', '(a="1") OR -(b="2")', '(a="1") OR'):
        try:
            parsed = parse_filter(text)
        except FilterError:
            continue  # refused outright is fine too
        assert pins(parsed) == [{}], text


@pytest.mark.parametrize("text", ["(", 'a="b" AND', "severity>=LOUD", 'timestamp>"soon"', '=x',
                                  'textPayload=~"("'])
def test_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


@pytest.mark.parametrize(("text", "expected"), [
    ('(resource.labels.job_id="42" timestamp>="2026-01-01T00:00:02Z") OR (resource.labels.job_id="7")',
     False),
    ('(resource.labels.job_id="42" timestamp>="2026-01-01T00:00:01Z") OR (resource.labels.job_id="7")',
     True),
    ('(resource.labels.job_id="7") OR (resource.labels.job_id="42" severity>=INFO)', True),
    ('(resource.labels.job_id="7") OR (resource.labels.job_id="42" severity>=ERROR)', False),
])
def test_each_alternative_decides_as_the_whole_filter_does(text: str, expected: bool) -> None:
    parsed = parse_filter(text)
    entry = view()
    assert parsed.matches(entry) is expected
    assert any(alternative.predicate(entry) for alternative in parsed.alternatives) is expected
