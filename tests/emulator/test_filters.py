"""The emulator's ListCustomJobs filter language (AIP-160) and its page tokens.

Pure unit tests of `gcpjobs.emulator.vertex.filters`; the server's use of them is tested
through the official clients elsewhere.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcpjobs.emulator.vertex.filters import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    FilterError,
    InvalidPageSize,
    InvalidPageToken,
    JobView,
    compile_filter,
    decode_page_token,
    effective_page_size,
    encode_page_token,
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


JOBS: dict[str, JobView] = {
    "a": JobView(
        display_name="my_job_1",
        state="JOB_STATE_SUCCEEDED",
        create_time=_at("2021-05-17T00:00:00Z"),
        update_time=_at("2021-05-17T01:00:00Z"),
        labels={"keya": "valuea", "env": "prod"},
    ),
    "b": JobView(
        display_name="my_job_2",
        state="JOB_STATE_FAILED",
        create_time=_at("2021-05-19T12:00:00Z"),
        labels={"keyb": "x", "a key": "spaced"},
    ),
    "c": JobView(
        display_name="other",
        state="JOB_STATE_RUNNING",
        create_time=_at("2021-05-18T00:00:00Z"),
        start_time=_at("2021-05-18T00:05:00Z"),
    ),
    "d": JobView(
        display_name="my_job",
        state="JOB_STATE_FAILED",
        create_time=_at("2021-06-01T00:00:00Z"),
        labels={"keya": "other"},
    ),
}


def _matching(text: str) -> set[str]:
    predicate = compile_filter(text)
    return {name for name, job in JOBS.items() if predicate(job)}


# The documented examples (ListCustomJobsRequest.filter), with label keys in lower case as
# real label keys must be.
DOCUMENTED = [
    ('state="JOB_STATE_SUCCEEDED" AND display_name:"my_job_*"', {"a"}),
    ('state!="JOB_STATE_FAILED" OR display_name="my_job"', {"a", "c", "d"}),
    ('NOT display_name="my_job"', {"a", "b", "c"}),
    ('create_time>"2021-05-18T00:00:00Z"', {"b", "d"}),
    ("labels.keya=valuea", {"a"}),
    ("labels.keyb:*", {"b"}),
]

PRECEDENCE = [
    # AIP-160: OR binds tighter than AND, so these read "FAILED AND (my_job OR other)".
    ('state=JOB_STATE_FAILED AND display_name="my_job" OR display_name="other"', {"d"}),
    ('display_name="other" OR display_name="my_job" AND state=JOB_STATE_FAILED', {"d"}),
    # Juxtaposition is an AND, and it too binds looser than OR.
    ('state=JOB_STATE_FAILED display_name="my_job"', {"d"}),
    ('state=JOB_STATE_FAILED display_name="my_job" OR display_name="other"', {"d"}),
    ('state=JOB_STATE_FAILED AND NOT display_name="my_job"', {"b"}),
    # Parentheses override it.
    ('(state=JOB_STATE_FAILED AND display_name="my_job") OR display_name="other"', {"c", "d"}),
    ("((state=JOB_STATE_RUNNING))", {"c"}),
    # NOT and "-" bind tightest.
    ("NOT state=JOB_STATE_FAILED AND labels.keya:*", {"a"}),
    ('NOT state=JOB_STATE_FAILED OR display_name="my_job"', {"a", "c", "d"}),
    ("-state=JOB_STATE_FAILED", {"a", "c"}),
    ('-state=JOB_STATE_FAILED OR display_name="my_job"', {"a", "c", "d"}),
    ("NOT (state=JOB_STATE_FAILED OR state=JOB_STATE_RUNNING)", {"a"}),
    ("NOT(state=JOB_STATE_RUNNING)", {"a", "b", "d"}),
    ("NOT NOT state=JOB_STATE_RUNNING", {"c"}),
    ("-(state=JOB_STATE_RUNNING)", {"a", "b", "d"}),
]

FIELDS_AND_VALUES = [
    ("", {"a", "b", "c", "d"}),
    ("   \t", {"a", "b", "c", "d"}),
    # spacing, quoting, camelCase
    ("  state = JOB_STATE_RUNNING  ", {"c"}),
    ("state=JOB_STATE_RUNNING\tOR\nstate=JOB_STATE_SUCCEEDED", {"a", "c"}),
    ("state='JOB_STATE_RUNNING'", {"c"}),
    ('displayName="other"', {"c"}),
    ("display_name='my_job'", {"d"}),
    ('display_name!="my_job"', {"a", "b", "c"}),
    # wildcards: ":" is equality in which "*" matches any run; "=" never expands "*"
    ('display_name:"my_job*"', {"a", "b", "d"}),
    ('display_name:"*job*"', {"a", "b", "d"}),
    ('display_name:"*_2"', {"b"}),
    ('display_name:"my*1"', {"a"}),
    ("display_name:my_job", {"d"}),
    ('display_name:"*"', {"a", "b", "c", "d"}),
    ('display_name="my_job*"', set()),
    # labels
    ('labels."a key"=spaced', {"b"}),
    ("labels.'a key':*", {"b"}),
    ('labels.keya!=valuea', {"b", "c", "d"}),  # a missing label is "not equal"
    ('labels.keya:"val*"', {"a"}),
    ("labels.keya:valuea", {"a"}),
    ("labels:keyb", {"b"}),
    ("labels:*", {"a", "b", "d"}),
    ("NOT labels.keya:*", {"b", "c"}),
    ('labels.env="prod" labels.keya=valuea', {"a"}),
    ('labels.keya=""', set()),
    # times: the same instant in any offset, nanoseconds, camelCase, unquoted
    ('create_time="2021-05-18T02:00:00+02:00"', {"c"}),
    ('create_time<"2021-05-17T20:00:00-04:00"', {"a"}),
    ('create_time<="2021-05-17T20:00:00-04:00"', {"a", "c"}),
    ('create_time!="2021-05-18T00:00:00Z"', {"a", "b", "d"}),
    ("create_time>=2021-05-18T00:00:00.000000001Z", {"b", "d"}),
    ('createTime="2021-05-17T00:00:00.000Z"', {"a"}),
    ('create_time>"2021-05-17T00:00:00Z" create_time<"2021-06-01T00:00:00Z"', {"b", "c"}),
    # a time a job does not have yet satisfies only "!="
    ('update_time>"2000-01-01T00:00:00Z"', {"a"}),
    ('startTime>="2021-01-01T00:00:00Z"', {"c"}),
    ('end_time!="2021-01-01T00:00:00Z"', {"a", "b", "c", "d"}),
    ('end_time<"2100-01-01T00:00:00Z"', set()),
]


@pytest.mark.parametrize(("text", "expected"), DOCUMENTED + PRECEDENCE + FIELDS_AND_VALUES)
def test_filter_selects_the_expected_jobs(text: str, expected: set[str]) -> None:
    assert _matching(text) == expected


def test_quoted_values_take_backslash_escapes() -> None:
    job = JobView('say "hi" \\ now', "JOB_STATE_QUEUED", _at("2021-01-01T00:00:00Z"))
    assert compile_filter(r'display_name="say \"hi\" \\ now"')(job)
    assert compile_filter(r"display_name='say \"hi\" \\ now'")(job)
    assert not compile_filter(r'display_name="say \"hi\""')(job)


def test_wildcard_treats_regex_characters_literally() -> None:
    job = JobView("a.b+c(1)", "JOB_STATE_QUEUED", _at("2021-01-01T00:00:00Z"))
    assert compile_filter('display_name:"a.b+c(*)"')(job)
    assert not compile_filter('display_name:"a?b*"')(job)


def test_unicode_label_keys_and_names() -> None:
    job = JobView("entraînement", "JOB_STATE_QUEUED", _at("2021-01-01T00:00:00Z"),
                  labels={"équipe": "données"})
    assert compile_filter("labels.équipe=données display_name:entra*")(job)


def test_naive_times_are_read_as_utc() -> None:
    job = JobView("n", "JOB_STATE_QUEUED", datetime(2021, 5, 18))
    assert compile_filter('create_time="2021-05-18T00:00:00Z"')(job)


STATE_LIST = (
    "JOB_STATE_UNSPECIFIED, JOB_STATE_QUEUED, JOB_STATE_PENDING, JOB_STATE_RUNNING, "
    "JOB_STATE_SUCCEEDED, JOB_STATE_FAILED, JOB_STATE_CANCELLING, JOB_STATE_CANCELLED, "
    "JOB_STATE_PAUSED, JOB_STATE_EXPIRED, JOB_STATE_UPDATING, JOB_STATE_PARTIALLY_SUCCEEDED"
)

BAD_FILTERS = [
    ("state=FOO", f'unknown state "FOO"; expected one of {STATE_LIST}'),
    ("state=SUCCEEDED", 'unknown state "SUCCEEDED"'),
    ("state=JOB_STATE_RUNNING)", 'unexpected token ")" at position 24'),
    ('display_name="x") AND state=JOB_STATE_RUNNING', 'unexpected token ")" at position 17'),
    ("(state=JOB_STATE_RUNNING", 'unexpected end of filter; expected ")"'),
    ('name="x"', 'unsupported field "name" at position 1; supported fields: display_name, '
                 "state, create_time, update_time, start_time, end_time, labels.KEY"),
    ('state=JOB_STATE_RUNNING AND job_spec="x"', 'unsupported field "job_spec" at position 29'),
    ("state<JOB_STATE_RUNNING", 'state does not support "<" (position 1); use =, !='),
    ('display_name>"a"', 'display_name does not support ">"'),
    ('labels.k>"a"', 'labels.k does not support ">"'),
    ("create_time:*", 'create_time does not support ":"'),
    ('create_time>"2021-05-18"', 'create_time needs an RFC 3339 timestamp such as '
                                 '"2021-05-18T00:00:00Z"; got "2021-05-18"'),
    ('createTime<"yesterday"', "createTime needs an RFC 3339 timestamp"),
    ('display_name="abc', "the string opened at position 14 is not closed"),
    ('state=JOB_STATE_RUNNING and display_name="x"', "must be written in upper case"),
    ("training", 'after "training" at position 1; a bare word is not a filter'),
    ("display_name=my job", 'after "job" at position 17'),
    ("AND state=JOB_STATE_RUNNING", 'unexpected token "AND" at position 1'),
    ("state=JOB_STATE_RUNNING AND", "unexpected end of filter"),
    ("state=JOB_STATE_RUNNING OR OR state=JOB_STATE_FAILED", 'unexpected token "OR" at position 28'),
    ("NOT", 'unexpected token "NOT" at position 1'),
    ("NOT ", "unexpected end of filter"),
    ("()", 'unexpected token ")" at position 2'),
    ("state=(JOB_STATE_RUNNING OR JOB_STATE_FAILED)", "value lists in parentheses are not supported"),
    ("labels=x", "labels needs a key: write labels.KEY=VALUE"),
    ("labels.a.b=x", 'label key "a.b" cannot contain "."'),
    ('display_name.first="x"', '"display_name" has no subfields'),
    ("display_name=", 'unexpected end of filter; expected a value after "="'),
    ("display_name=AND", 'expected a value after "="'),
    ("state!JOB_STATE_RUNNING", 'expected an operator (=, !=, <, <=, >, >=, :) after "state"'),
    ("=JOB_STATE_RUNNING", 'unexpected token "=" at position 1'),
    ("(" * 40 + "state=JOB_STATE_RUNNING" + ")" * 40, "parentheses nest deeper than 32 levels"),
    ('name="a\nb"\tOR\rstate=X', 'unsupported field "name"'),
]


@pytest.mark.parametrize(("text", "problem"), BAD_FILTERS)
def test_bad_filter_is_refused_in_one_helpful_line(text: str, problem: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    message = str(caught.value)
    assert message.startswith(f"Invalid filter {json.dumps(text)}: ")
    assert problem in message
    assert "\n" not in message and "\r" not in message


def test_unknown_state_message_is_exact() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter("state=FOO")
    assert str(caught.value) == (
        f'Invalid filter "state=FOO": unknown state "FOO"; expected one of {STATE_LIST}'
    )


def test_long_filter_is_shortened_in_the_message() -> None:
    text = "name=" + "x" * 500
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    assert len(str(caught.value)) < 500


def test_long_negation_chain_does_not_exhaust_the_stack() -> None:
    assert _matching("NOT " * 5000 + "state=JOB_STATE_RUNNING") == {"c"}
    assert _matching("-" * 5001 + "state=JOB_STATE_RUNNING") == {"a", "b", "d"}


_FILTER_PIECES = st.sampled_from([
    "state", "=", "!=", "<", ">=", ":", "JOB_STATE_RUNNING", "display_name", "displayName",
    "labels", ".", "k", '"', "'", "*", "(", ")", "AND", "OR", "NOT", "-", " ", "\\",
    "create_time", '"2021-05-18T00:00:00Z"', "2021-05-18T00:00:00Z", "x", "é", "\n",
])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_FILTER_PIECES, max_size=20).map("".join)))
def test_any_text_compiles_or_fails_with_filter_error(text: str) -> None:
    try:
        predicate = compile_filter(text)
    except FilterError as error:
        assert "\n" not in str(error)
        return
    for job in JOBS.values():
        assert predicate(job) in (True, False)


# ---------------------------------------------------------------------------------------------
# Paging


@pytest.mark.parametrize("offset", [0, 1, 50, 10**9])
@pytest.mark.parametrize("text", ["", 'state="JOB_STATE_RUNNING"', "labels.équipe:*"])
def test_page_token_round_trips(offset: int, text: str) -> None:
    token = encode_page_token(offset, text)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), "tokens must be URL-safe"
    assert decode_page_token(token, text) == offset


def test_no_page_token_is_the_first_page() -> None:
    assert decode_page_token("", "state=JOB_STATE_RUNNING") == 0


def test_page_token_for_another_filter_is_refused() -> None:
    token = encode_page_token(50, "state=JOB_STATE_RUNNING")
    with pytest.raises(InvalidPageToken, match="issued for a different filter"):
        decode_page_token(token, "state=JOB_STATE_FAILED")
    with pytest.raises(InvalidPageToken):
        decode_page_token(token, "")


def test_page_token_for_another_scope_is_refused() -> None:
    token = encode_page_token(50, "", scope="projects/p/locations/us-central1")
    assert decode_page_token(token, "", scope="projects/p/locations/us-central1") == 50
    with pytest.raises(InvalidPageToken, match="different list request"):
        decode_page_token(token, "", scope="projects/p/locations/europe-west4")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_every_altered_byte_is_detected() -> None:
    raw = _raw(encode_page_token(50, "x"))
    for index in range(len(raw)):
        altered = bytearray(raw)
        altered[index] ^= 0x01
        with pytest.raises(InvalidPageToken, match="not a token this server issued"):
            decode_page_token(_b64(bytes(altered)), "x")


def test_hand_made_token_is_refused() -> None:
    genuine = _raw(encode_page_token(50, "x"))
    payload = genuine[:-12].replace(b",50,", b",0,")
    with pytest.raises(InvalidPageToken):
        decode_page_token(_b64(payload + genuine[-12:]), "x")


@pytest.mark.parametrize("token", ["abc", "!!!!", "A" * 100, "====", "é", _b64(b"[1,2]" + bytes(12))])
def test_garbage_page_token_is_refused_in_one_line(token: str) -> None:
    with pytest.raises(InvalidPageToken) as caught:
        decode_page_token(token, "")
    assert "\n" not in str(caught.value)
    assert "omit page_token" in str(caught.value)


def test_negative_offset_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode_page_token(-1, "")


@pytest.mark.parametrize(
    ("requested", "effective"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (MAX_PAGE_SIZE, MAX_PAGE_SIZE), (MAX_PAGE_SIZE + 1, MAX_PAGE_SIZE),
     (10**6, MAX_PAGE_SIZE)],
)
def test_page_size_is_defaulted_and_capped(requested: int, effective: int) -> None:
    assert effective_page_size(requested) == effective


def test_negative_page_size_is_refused() -> None:
    with pytest.raises(InvalidPageSize, match="page_size must not be negative"):
        effective_page_size(-1)


def test_page_size_constants() -> None:
    assert (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) == (50, 100)
