"""The ListCustomJobs `filter` language (paging lives in emulator/paging.py, re-exported here).

Vertex documents (ListCustomJobsRequest.filter): `display_name` with `=`, `!=` and `:` wildcard;
`state` with `=`, `!=`; `create_time` with `=`, `!=`, `<`, `<=`, `>`, `>=` and an RFC 3339
value; `labels.key=value` and `labels.key:*`; AND, OR, NOT; snake_case and camelCase field
names; quoted label keys (`labels."a key"`). The grammar is Google's AIP-160, written once
for the emulator in `gcpjobs.emulator.aip160` (this module brings its lexicon and meaning):

    filter     = [expression]
    expression = sequence {"AND" sequence}
    sequence   = factor {factor}            juxtaposition is an AND
    factor     = term {"OR" term}
    term       = ["NOT" | "-"] simple
    simple     = restriction | "(" expression ")"
    restriction = member comparator value   comparator: = != < <= > >= :

so, faithfully to AIP-160 and unlike most programming languages, OR binds tighter than AND:
`a AND b OR c` means `a AND (b OR c)`, and `a b OR c` means the same. NOT and `-` bind
tightest. AND, OR and NOT are keywords only in upper case.

Choices where the documents leave room (each is what a careful client can rely on):
- `:` on a string is AIP-160's "has", which for a single value means equality; a `*` in the
  value is a wildcard for any run of characters, so `display_name:"my_job_*"` is a prefix
  match and `display_name:"*train*"` a substring match. `=` and `!=` never expand `*`.
- `labels.KEY:*` is true when the label exists; `labels.KEY:V` and `labels.KEY=V` when it has
  the value V (`:` with the same wildcards as above); `labels.KEY!=V` when it is missing or
  differs; `labels:KEY` (AIP-160's map "has key") when the key exists.
- `update_time`, `start_time` and `end_time` take the operators of `create_time`. A job that
  has no such time yet (not started, not ended) satisfies only `!=`.
- Values are double- or single-quoted (backslash escapes the next character) or bare; a
  bare value runs to the next space, parenthesis or quote, so `create_time>2021-05-18T00:00:00Z`
  works unquoted. State values are the `JobState` names (`JOB_STATE_SUCCEEDED`).
- A bare word with no comparison (AIP-160's global search) and parenthesised value lists
  (`state=(A OR B)`) are refused with a message that shows the supported spelling.

- Limits (Vertex documents none): a filter is at most 32,768 characters, parentheses nest at most 32 deep, and NUL characters are refused.
  Wildcards are matched in linear time (no regex backtracking).

Every refusal is a `FilterError` whose message is one line, what the server returns as
INVALID_ARGUMENT: `Invalid filter "<filter>": <what is wrong>`. Positions count characters
from 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from types import MappingProxyType
from typing import NoReturn, Protocol

from google.protobuf import timestamp_pb2
from lark import Token

from gcpjobs.emulator import aip160
from gcpjobs.emulator.paging import (  # noqa: F401  (re-exported: the Vertex paging names)
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InvalidPageSize,
    InvalidPageToken,
    decode_page_token,
    effective_page_size,
    encode_page_token,
)
from gcpjobs.states import JobState


class FilterError(ValueError):
    """A ListCustomJobs filter the server refuses; the message is the INVALID_ARGUMENT text."""


@dataclass(frozen=True)
class JobView:
    """What a filter sees of a job."""

    display_name: str
    state: str  # "JOB_STATE_RUNNING"
    create_time: datetime  # aware, UTC
    update_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def compile_filter(text: str) -> Callable[[JobView], bool]:
    """Parse a ListCustomJobs filter into a predicate; "" (or only spaces) matches every job.

    Raises `FilterError` for anything the real service would refuse as INVALID_ARGUMENT.
    """
    return _compile(text).matches


# ---------------------------------------------------------------------------------------------
# The leaves of a parsed filter (its connectives are aip160's). Each answers one question about
# one job.


class _Node(Protocol):
    def matches(self, job: JobView, /) -> bool: ...


@dataclass(frozen=True)
class _Pattern:
    """`:` value: equality, where each `*` stands for any run of characters.

    Matched without a regex: a backtracking engine takes exponential time on `*a*a*a*a*b`
    (and holds the GIL meanwhile, freezing every other request). With only `*` as a wildcard,
    the leftmost place each middle piece fits is always as good as any later one, so one
    left-to-right scan decides: time linear in the text for each piece."""

    pieces: tuple[str, ...]  # value.split("*"): at least one; the first and last are anchored

    @classmethod
    def of(cls, value: str) -> _Pattern:
        return cls(tuple(value.split("*")))

    def matches_text(self, text: str) -> bool:
        if len(self.pieces) == 1:
            return text == self.pieces[0]
        first, *middle, last = self.pieces
        if len(first) + len(last) > len(text) or not text.startswith(first) or not text.endswith(last):
            return False
        position, end = len(first), len(text) - len(last)
        for piece in middle:
            found = text.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True


_Read = Callable[[JobView], "str | None"]  # one field of a job; None where it has none


@dataclass(frozen=True)
class _Equals:
    """A field with `=` (`equal`) or `!=`. A missing label is "not equal": labels.k!=v keeps
    jobs without the label."""

    read: _Read
    equal: bool
    value: str

    def matches(self, job: JobView) -> bool:
        return (self.read(job) == self.value) is self.equal


@dataclass(frozen=True)
class _Like:
    """A field with `:` and a pattern; a missing label matches none."""

    read: _Read
    pattern: _Pattern

    def matches(self, job: JobView) -> bool:
        actual = self.read(job)
        return actual is not None and self.pattern.matches_text(actual)


@dataclass(frozen=True)
class _Time:
    attribute: str
    operator: str
    nanos: int  # since the Unix epoch, UTC

    def matches(self, job: JobView) -> bool:
        when: datetime | None = getattr(job, self.attribute)
        if when is None:
            return self.operator == "!="
        return _COMPARE[self.operator](_epoch_nanos(when), self.nanos)


@dataclass(frozen=True)
class _LabelHas:
    key: str

    def matches(self, job: JobView) -> bool:
        return self.key in job.labels


@dataclass(frozen=True)
class _HasLabels:
    def matches(self, job: JobView) -> bool:
        return bool(job.labels)


def _display_name(job: JobView) -> str:
    return job.display_name


def _state(job: JobView) -> str:
    return job.state


def _label(key: str) -> _Read:
    return lambda job: job.labels.get(key)


_COMPARE: Mapping[str, Callable[[int, int], bool]] = MappingProxyType(
    {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _epoch_nanos(when: datetime) -> int:
    # Integer arithmetic: a float timestamp would blur equality at microsecond precision.
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


# ---------------------------------------------------------------------------------------------
# Fields: the names a filter may use, mapped to what they mean.

_TIME_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "create_time": "create_time",
        "createTime": "create_time",
        "update_time": "update_time",
        "updateTime": "update_time",
        "start_time": "start_time",
        "startTime": "start_time",
        "end_time": "end_time",
        "endTime": "end_time",
    }
)
_DISPLAY_NAME_FIELDS = frozenset({"display_name", "displayName"})
_SUPPORTED_FIELDS = (
    "display_name, state, create_time, update_time, start_time, end_time, labels.KEY "
    "(camelCase names such as displayName work too)"
)
_STATE_NAMES: tuple[str, ...] = tuple(f"JOB_STATE_{state.value}" for state in JobState)
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
# A bare word, as a refusal shows what it found: it ends where AIP-160's TEXT ends.
_WORD = re.compile(r"[^ \t\r\n.,:=<>!()\"']+")
_MAX_NESTING = 32  # parentheses; keeps hostile filters far from Python's recursion limit (aip160.build)
# Vertex documents no maximum; the emulator's own, 32 KiB of text, is past anything a client
# writes (a filter naming a few hundred jobs fits), so a huge filter is refused before parsing.
MAX_FILTER_LENGTH = 32_768


# The lexicon of ListCustomJobs filters. A bare word ends at a space or at one of
# `.,:=<>!()"'`, a bare value only at a space, a parenthesis or a quote (so an unquoted
# timestamp keeps its colons); a part after "." starts right there (its own terminal, KEY, as
# it may start with "-"); AND and OR are keywords only as whole words, NOT only before a space
# or "(", and each only in upper case. A chain of negations ("NOT -(", "--") is one NOT token.
_LEXICON = r"""
NAME: /[^\s.,:=<>!()"'\-][^ \t\r\n.,:=<>!()"']*/
KEY.2: /[^ \t\r\n.,:=<>!()"']+/
VALUE: /[^\s()"'][^ \t\r\n()"']*/
STRING: /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/s
COMPARATOR: /<=|>=|!=|<|>|=|:/
AND.2: /AND(?![^ \t\r\n.,:=<>!()"'])/
OR.2: /OR(?![^ \t\r\n.,:=<>!()"'])/
NOT.2: /(?:-|NOT(?=[ \t\r\n(]))(?:\s*(?:-|NOT(?=[ \t\r\n(])))*/
"""
_GRAMMAR = aip160.Grammar(_LEXICON)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_FIELD_NAME = "a field name such as display_name, state, create_time or labels.KEY"
_COMPARISON = "a comparison such as state=JOB_STATE_RUNNING"


@lru_cache(maxsize=256)
def _compile(text: str) -> _Filter:
    # Cached: clients poll the same filter over and over, and nodes are immutable.
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"Invalid filter {_quote_filter(text)}: the filter is {len(text)} "
                          f"characters long; the maximum is {MAX_FILTER_LENGTH}")
    if "\x00" in text:
        raise FilterError(f"Invalid filter {_quote_filter(text)}: it contains a NUL character")
    return _Filter(_Reader(text).read())


@dataclass(frozen=True)
class _Filter:
    node: aip160.Node[_Node]

    def matches(self, job: JobView) -> bool:
        return aip160.evaluate(self.node, lambda leaf: leaf.matches(job))


@dataclass(frozen=True)
class _Value:
    text: str
    quoted: bool
    position: int  # 1-based


class _Reader:
    """Reads a filter with the shared grammar, seeing each token before the parser takes it:
    that is where a restriction is given its meaning, the nesting limited and a refusal worded
    by what the reader was about to read (`phase`)."""

    def __init__(self, text: str) -> None:
        self.text = text
        # operand: a restriction or "(" comes next; member: inside a field name; dot: right
        # after its "."; value: after the comparator; connector: after a restriction or ")".
        self.phase = "operand"
        self.after_open = False  # the last token was "("
        self.depth = 0
        self.last_end = 0  # where the last token ended (0-based)
        self.path: list[_Value] = []
        self.operator = ""
        self.leaves: list[_Node] = []

    def read(self) -> aip160.Node[_Node]:
        try:
            tree = _GRAMMAR.parse(self.text, self._take)
        except aip160.SyntaxProblem as problem:
            self._refuse_at(problem.position)
        if self.phase == "member":  # the grammar's global restriction, which Vertex has not
            self._fail_missing_comparator()
        return aip160.build(tree, self.leaves)

    def _take(self, token: Token) -> None:
        kind, start = token.type, aip160.start_of(token)
        if self.phase == "member" and kind not in ("DOT", "COMPARATOR"):
            self._fail_missing_comparator()
        if self.phase == "dot" and start != self.last_end:
            self._refuse_at(start)  # a field name part starts right after its "."
        if kind == "DOT" and start != self.last_end:
            self._fail_missing_comparator()
        if kind in ("NAME", "KEY") and token.value in _KEYWORDS:
            self._fail_unexpected(start, _COMPARISON)
        if kind == "STRING":
            kind = "VALUE" if self.phase == "value" else "KEY" if self.phase == "dot" else "NAME"
        if kind == "NAME":
            self.path = [self._part(token)]
            self.phase = "member"
        elif kind == "KEY":
            self.path.append(self._part(token))
            self.phase = "member"
        elif kind == "DOT":
            self.phase = "dot"
        elif kind == "COMPARATOR":
            self.operator = token.value
            self.phase = "value"
        elif kind == "VALUE":
            self._take_value(token)
        elif kind == "LPAR":
            if self.depth >= _MAX_NESTING:
                self._fail(f"parentheses nest deeper than {_MAX_NESTING} levels; simplify the filter")
            self.depth += 1
            self.phase = "operand"
        elif kind == "RPAR":
            if not self.depth:  # the parser would take it as a lookahead, then refuse it
                self._fail_unexpected(start)
            self.depth -= 1
            self.phase = "connector"
        else:  # AND, OR, NOT, "-"
            self.phase = "operand"
        self.after_open = kind == "LPAR"
        self.last_end = aip160.end_of(token)

    def _take_value(self, token: Token) -> None:
        if token.type == "VALUE" and token.value in _KEYWORDS:
            self._fail_unexpected(aip160.start_of(token), f'a value after "{self.operator}" (quote values '
                                  f"that contain spaces or the words AND, OR, NOT)")
        value = self._part(token)
        self.leaves.append(self._restriction_node(self.path, self.operator, value,
                                                  self.path[0].position))
        self.phase = "connector"

    @staticmethod
    def _part(token: Token) -> _Value:
        if token.type == "STRING":
            return _Value(_ESCAPE.sub(r"\1", token.value[1:-1]), True, aip160.start_of(token) + 1)
        return _Value(token.value, False, aip160.start_of(token) + 1)

    def _refuse_at(self, position: int) -> NoReturn:
        """Word the refusal of what stands at `position` (0-based), as what comes next."""
        char = self.text[position] if position < len(self.text) else ""
        phase = self.phase
        if phase == "member":
            self._fail_missing_comparator()
        if phase == "dot":
            position = self.last_end
            char = self.text[position] if position < len(self.text) else ""
        if char in ('"', "'"):
            self._fail(f"the string opened at position {position + 1} is not closed; add a "
                       f"closing {char}")
        if phase == "value":
            if char == "(":
                self._fail(f"value lists in parentheses are not supported (position "
                           f"{position + 1}); write field=A OR field=B")
            self._fail_unexpected(position, f'a value after "{self.operator}" (quote values that '
                                  f"contain spaces or the words AND, OR, NOT)")
        if phase == "connector" and not char and self.depth:
            self._fail_unexpected(position, '")"')
        if phase == "connector" and char == ")" and not self.depth:
            self._fail_unexpected(position)
        if phase == "operand" and char == ")" and self.after_open:
            self._fail_unexpected(position, _COMPARISON)
        self._fail_unexpected(position, _FIELD_NAME)

    # -- restrictions -------------------------------------------------------------------------

    def _restriction_node(
        self, path: list[_Value], operator: str, value: _Value, start: int
    ) -> _Node:
        head = path[0].text
        if head == "labels":
            return self._labels_node(path, operator, value)
        if head not in _DISPLAY_NAME_FIELDS and head != "state" and head not in _TIME_FIELDS:
            self._fail(f"unsupported field {_show(head)} at position {start}; supported fields: "
                       f"{_SUPPORTED_FIELDS}")
        if len(path) > 1:
            self._fail(f"{_show(head)} has no subfields (position {start})")
        if head in _DISPLAY_NAME_FIELDS:
            self._require_operator(head, operator, ("=", "!=", ":"), start)
            if operator == ":":
                return _Like(_display_name, _Pattern.of(value.text))
            return _Equals(_display_name, operator == "=", value.text)
        if head == "state":
            self._require_operator(head, operator, ("=", "!="), start)
            if value.text not in _STATE_NAMES:
                self._fail(f"unknown state {_show(value.text)}; expected one of "
                           f"{', '.join(_STATE_NAMES)}")
            return _Equals(_state, operator == "=", value.text)
        self._require_operator(head, operator, ("=", "!=", "<", "<=", ">", ">="), start)
        return _Time(_TIME_FIELDS[head], operator, self._timestamp_nanos(head, value))

    def _labels_node(self, path: list[_Value], operator: str, value: _Value) -> _Node:
        if len(path) == 1:
            if operator == ":" and value.text == "*" and not value.quoted:
                return _HasLabels()  # AIP-160 presence: the map is not empty
            if operator == ":" and value.text:
                return _LabelHas(value.text)  # AIP-160 map "has key": labels:KEY
            self._fail("labels needs a key: write labels.KEY=VALUE, labels.KEY!=VALUE or "
                       "labels.KEY:*")
        if len(path) > 2:
            keys = ".".join(part.text for part in path[1:])
            self._fail(f'label key {_show(keys)} cannot contain "."; quote keys with other '
                       f'characters, e.g. labels."a key"=value')
        key = path[1].text
        shown = f"labels.{key}" if re.fullmatch(r"[\w-]+", key) else f"labels.{_show(key)}"
        self._require_operator(shown, operator, ("=", "!=", ":"), path[1].position)
        if operator == ":":
            if value.text == "*" and not value.quoted:
                return _LabelHas(key)
            return _Like(_label(key), _Pattern.of(value.text))
        return _Equals(_label(key), operator == "=", value.text)

    def _require_operator(
        self, field_name: str, operator: str, allowed: tuple[str, ...], position: int
    ) -> None:
        if operator not in allowed:
            self._fail(f'{field_name} does not support "{operator}" (position {position}); '
                       f"use {', '.join(allowed)}")

    def _timestamp_nanos(self, field_name: str, value: _Value) -> int:
        stamp = timestamp_pb2.Timestamp()
        try:
            stamp.FromJsonString(value.text)
        except ValueError:
            self._fail(f'{field_name} needs an RFC 3339 timestamp such as '
                       f'"2021-05-18T00:00:00Z"; got {_show(value.text)}')
        return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)

    # -- errors -------------------------------------------------------------------------------

    def _fail(self, problem: str) -> NoReturn:
        raise FilterError(f"Invalid filter {_quote_filter(self.text)}: {problem}")

    def _fail_unexpected(self, position: int, expected: str | None = None) -> NoReturn:
        if position >= len(self.text):
            found = "end of filter"
        else:
            word = _WORD.match(self.text, position)
            shown = word.group() if word else self.text[position]
            found = f"token {_show(shown)} at position {position + 1}"
        problem = f"unexpected {found}"
        self._fail(f"{problem}; expected {expected}" if expected else problem)

    def _fail_missing_comparator(self) -> NoReturn:
        name, start = self.path[0].text, self.path[0].position
        if name.lower() in {"and", "or", "not"}:
            hint = "; the operators AND, OR and NOT must be written in upper case"
        elif name in _DISPLAY_NAME_FIELDS or name in _TIME_FIELDS or name in ("state", "labels"):
            hint = ""
        else:
            hint = ('; a bare word is not a filter: compare a field, e.g. display_name="my job" '
                    "(quote values that contain spaces)")
        self._fail(f"expected an operator (=, !=, <, <=, >, >=, :) after {_show(name)} at position "
                   f"{start}{hint}")


def _quote_filter(text: str) -> str:
    return _show(text if len(text) <= 200 else text[:200] + "…")


def _show(text: str) -> str:
    # JSON quoting keeps a message on one line whatever the filter contains (newlines, tabs).
    return json.dumps(text, ensure_ascii=False)
