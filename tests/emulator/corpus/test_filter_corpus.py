"""Bad filters on the wire: every one is a Google JSON INVALID_ARGUMENT (HTTP 400), and the
emulator is still serving afterwards (issue 11's bad-input corpus, the filter part).

Vertex ListCustomJobs filters go in the query string of `GET .../customJobs?filter=...`;
Logging filters in the body of `POST /v2/entries:list`, and of `POST /v2/entries:tail`, which
refuses a bad filter before it streams anything.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.corpus.support import assert_google_error, assert_still_serving, call

LIST_JOBS = "/v1/projects/gcpjobs-test/locations/us-central1/customJobs"

# name: filter. Each is refused by the real services too (or, for the limits, by their
# documented bounds: see the filter modules).
VERTEX: dict[str, str] = {
    "unclosed-double-quote": 'display_name="abc',
    "unclosed-single-quote": "display_name='abc",
    "unclosed-paren": "(state=JOB_STATE_RUNNING",
    "stray-close-paren": "state=JOB_STATE_RUNNING)",
    "empty-parens": "()",
    "unknown-field": "foo=bar",
    "unknown-nested-field": "job_spec.image=x",
    "subfield-of-scalar": "display_name.x=a",
    "state-greater-than": "state>JOB_STATE_RUNNING",
    "display-name-less-than": "display_name<abc",
    "time-has": "create_time:2021-01-01T00:00:00Z",
    "double-equals": "state==JOB_STATE_RUNNING",
    "unknown-state": "state=JOB_STATE_NOPE",
    "lowercase-state": "state=running",
    "bad-timestamp-word": "create_time>yesterday",
    "bad-timestamp-month": 'create_time>"2021-13-01T00:00:00Z"',
    "bad-timestamp-date-only": 'update_time<"2021-05-18"',
    "labels-without-key": "labels=x",
    "label-key-with-dot": "labels.a.b=c",
    "label-less-than": "labels.a<b",
    "bare-word": "just_a_word",
    "value-list": "state=(JOB_STATE_RUNNING OR JOB_STATE_FAILED)",
    "leading-and": "AND state=JOB_STATE_RUNNING",
    "trailing-and": "state=JOB_STATE_RUNNING AND",
    "trailing-or": "state=JOB_STATE_RUNNING OR",
    "lone-not": "NOT",
    "lowercase-and": "state=JOB_STATE_RUNNING and display_name=a",
    "missing-value": "display_name=",
    "missing-operator": "display_name",
    "nul-in-value": 'display_name="a\x00b"',
    "nul-bare": "state=JOB_STATE_RUNNING\x00",
    "over-deep": "(" * 40 + "state=JOB_STATE_RUNNING" + ")" * 40,
    "over-long": 'display_name="' + "a" * 33_000 + '"',
}
LOGGING: dict[str, str] = {
    "unclosed-quote": 'textPayload="abc',
    "unclosed-quoted-label-key": 'labels."unclosed=a',
    "unclosed-paren": '(textPayload:"a"',
    "stray-close-paren": 'textPayload:"a")',
    "lone-close-paren": ")",
    "empty-parens": "()",
    "missing-value": "textPayload=",
    "missing-has-value": "textPayload:",
    "operator-as-value": "textPayload = = a",
    "arrow-operator": "textPayload=>a",
    "bang-operator": "textPayload !! a",
    "lone-operator": "=",
    "lone-not": "NOT",
    "regex-unclosed-group": 'textPayload=~"("',
    "regex-bad-class-range": 'textPayload=~"[z-a]"',
    "regex-huge-repeat": 'textPayload=~"a{1001}"',
    "regex-trailing-backslash": 'textPayload=~"\\\\"',
    "regex-backreference": r'textPayload=~"(a)\\1"',
    "regex-lookahead": 'textPayload=~"(?=a)a"',
    "regex-negative-lookahead": 'textPayload!~"(?!a)b"',
    "regex-lookbehind": 'textPayload=~"(?<=a)b"',
    "regex-possessive": 'textPayload=~"a++"',
    "bad-timestamp-word": 'timestamp>"yesterday"',
    "bad-timestamp-year-only": 'receiveTimestamp<"2024"',
    "bad-timestamp-month": 'timestamp>="2024-13-45T00:00:00Z"',
    "bad-severity": "severity>=LOUD",
    "nul": 'textPayload:"a\x00b"',
    "over-deep": "(" * 40 + 'textPayload:"x"' + ")" * 40,
    "over-long": 'textPayload:"' + "x" * 20_000 + '"',
}


@pytest.mark.parametrize("case", sorted(VERTEX))
def test_bad_vertex_list_filter(emulator: EmulatorProcess, case: str) -> None:
    reply = call(emulator, "GET", f"{LIST_JOBS}?filter={quote(VERTEX[case], safe='')}")
    message = assert_google_error(reply, 400, "INVALID_ARGUMENT")
    assert "filter" in message.lower(), message
    assert_still_serving(emulator)


@pytest.mark.parametrize("case", sorted(LOGGING))
def test_bad_logging_list_filter(emulator: EmulatorProcess, case: str) -> None:
    body = {"resourceNames": ["projects/gcpjobs-test"], "filter": LOGGING[case]}
    reply = call(emulator, "POST", "/v2/entries:list", body)
    assert_google_error(reply, 400, "INVALID_ARGUMENT")
    assert_still_serving(emulator)


@pytest.mark.parametrize("case", ["unclosed-quote", "regex-backreference", "bad-timestamp-month",
                                  "nul", "over-deep", "over-long"])
def test_bad_logging_tail_filter(emulator: EmulatorProcess, case: str) -> None:
    body = {"resourceNames": ["projects/gcpjobs-test"], "filter": LOGGING[case]}
    reply = call(emulator, "POST", "/v2/entries:tail", body)
    assert_google_error(reply, 400, "INVALID_ARGUMENT")
    assert_still_serving(emulator)
