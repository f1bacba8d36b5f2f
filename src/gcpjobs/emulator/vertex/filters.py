"""The ListCustomJobs `filter` language (paging lives in emulator/paging.py, re-exported here).

Vertex documents (ListCustomJobsRequest.filter): `display_name` with `=`, `!=` and `:` wildcard;
`state` with `=`, `!=`; `create_time` with `=`, `!=`, `<`, `<=`, `>`, `>=` and an RFC 3339
value; `labels.key=value` and `labels.key:*`; AND, OR, NOT; snake_case and camelCase field
names; quoted label keys (`labels."a key"`). The grammar is Google's AIP-160:

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
# What a parsed filter is made of. Each node answers one question about one job.


class _Node(Protocol):
    def matches(self, job: JobView) -> bool: ...


@dataclass(frozen=True)
class _Always:
    def matches(self, job: JobView) -> bool:
        return True


@dataclass(frozen=True)
class _All:
    parts: tuple[_Node, ...]

    def matches(self, job: JobView) -> bool:
        return all(part.matches(job) for part in self.parts)


@dataclass(frozen=True)
class _Any:
    parts: tuple[_Node, ...]

    def matches(self, job: JobView) -> bool:
        return any(part.matches(job) for part in self.parts)


@dataclass(frozen=True)
class _Not:
    part: _Node

    def matches(self, job: JobView) -> bool:
        return not self.part.matches(job)


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


@dataclass(frozen=True)
class _DisplayName:
    equal: bool
    value: str

    def matches(self, job: JobView) -> bool:
        return (job.display_name == self.value) is self.equal


@dataclass(frozen=True)
class _DisplayNameLike:
    pattern: _Pattern

    def matches(self, job: JobView) -> bool:
        return self.pattern.matches_text(job.display_name)


@dataclass(frozen=True)
class _State:
    equal: bool
    value: str

    def matches(self, job: JobView) -> bool:
        return (job.state == self.value) is self.equal


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


@dataclass(frozen=True)
class _LabelValue:
    key: str
    equal: bool
    value: str

    def matches(self, job: JobView) -> bool:
        # A missing label is "not equal": labels.k!=v keeps jobs without the label.
        return (job.labels.get(self.key) == self.value) is self.equal


@dataclass(frozen=True)
class _LabelLike:
    key: str
    pattern: _Pattern

    def matches(self, job: JobView) -> bool:
        actual = job.labels.get(self.key)
        return actual is not None and self.pattern.matches_text(actual)


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
_COMPARATORS = ("<=", ">=", "!=", "<", ">", "=", ":")
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
# Characters that end a bare word: AIP-160's TEXT excludes these.
_WORD_STOP = frozenset(" \t\r\n.,:=<>!()\"'")
_VALUE_STOP = frozenset(" \t\r\n()\"'")
_MAX_NESTING = 32  # parentheses; keeps hostile filters far from Python's recursion limit
# Vertex documents no maximum; the emulator's own, 32 KiB of text, is past anything a client
# writes (a filter naming a few hundred jobs fits), so a huge filter is refused before parsing.
MAX_FILTER_LENGTH = 32_768


@lru_cache(maxsize=256)
def _compile(text: str) -> _Node:
    # Cached: clients poll the same filter over and over, and nodes are immutable.
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"Invalid filter {_quote_filter(text)}: the filter is {len(text)} "
                          f"characters long; the maximum is {MAX_FILTER_LENGTH}")
    if "\x00" in text:
        raise FilterError(f"Invalid filter {_quote_filter(text)}: it contains a NUL character")
    return _Parser(text).parse()


@dataclass(frozen=True)
class _Value:
    text: str
    quoted: bool
    position: int  # 1-based


class _Parser:
    """Recursive descent over the raw text (no separate token list: whether `:` or `-` ends a
    token depends on where the parser stands, e.g. inside an unquoted timestamp)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- entry --------------------------------------------------------------------------------

    def parse(self) -> _Node:
        self._skip_space()
        if self._at_end():
            return _Always()
        node = self._expression()
        self._skip_space()
        if not self._at_end():
            self._fail_unexpected()
        return node

    # -- grammar ------------------------------------------------------------------------------

    def _expression(self) -> _Node:
        parts = [self._sequence()]
        while self._next_keyword() == "AND":
            self._take_word()
            self._skip_space()
            parts.append(self._sequence())
        return parts[0] if len(parts) == 1 else _All(tuple(parts))

    def _sequence(self) -> _Node:
        parts = [self._factor()]
        while True:
            self._skip_space()
            if self._at_end() or self._peek() == ")" or self._next_keyword() == "AND":
                break
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else _All(tuple(parts))

    def _factor(self) -> _Node:
        parts = [self._term()]
        while self._next_keyword() == "OR":
            self._take_word()
            self._skip_space()
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else _Any(tuple(parts))

    def _term(self) -> _Node:
        negations = 0
        while True:  # a loop, not recursion: "NOT NOT NOT ..." must not exhaust the stack
            self._skip_space()
            if self._peek() == "-":
                self.pos += 1
                negations += 1
            elif self._next_keyword() == "NOT" and self._negation_follows():
                self._take_word()
                negations += 1
            else:
                break
        self._skip_space()
        node = self._simple()
        return _Not(node) if negations % 2 else node

    def _simple(self) -> _Node:
        if self._peek() != "(":
            return self._restriction()
        if self.depth >= _MAX_NESTING:
            self._fail(f"parentheses nest deeper than {_MAX_NESTING} levels; simplify the filter")
        self.depth += 1
        self.pos += 1
        self._skip_space()
        if self._peek() == ")":
            self._fail_unexpected("a comparison such as state=JOB_STATE_RUNNING")
        node = self._expression()
        self._skip_space()
        if self._peek() != ")":
            self._fail_unexpected('")"')
        self.pos += 1
        self.depth -= 1
        return node

    def _restriction(self) -> _Node:
        start = self.pos + 1
        name = self._member_part()
        path = [name]
        while self._peek() == ".":
            self.pos += 1
            path.append(self._member_part())
        self._skip_space()
        operator = self._comparator()
        if operator is None:
            self._fail_missing_comparator(path[0].text, start)
        self._skip_space()
        value = self._value(operator)
        return self._restriction_node(path, operator, value, start)

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
                return _DisplayNameLike(_Pattern.of(value.text))
            return _DisplayName(operator == "=", value.text)
        if head == "state":
            self._require_operator(head, operator, ("=", "!="), start)
            if value.text not in _STATE_NAMES:
                self._fail(f"unknown state {_show(value.text)}; expected one of "
                           f"{', '.join(_STATE_NAMES)}")
            return _State(operator == "=", value.text)
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
            return _LabelLike(key, _Pattern.of(value.text))
        return _LabelValue(key, operator == "=", value.text)

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

    # -- lexical pieces -----------------------------------------------------------------------

    def _member_part(self) -> _Value:
        """One dot-separated piece of a field name: a bare word or a quoted string."""
        position = self.pos + 1
        if self._peek() in ('"', "'"):
            return _Value(self._quoted(), True, position)
        word = self._take_word()
        if not word:
            self._fail_unexpected("a field name such as display_name, state, create_time or "
                                  "labels.KEY")
        if word in _KEYWORDS:
            self.pos -= len(word)
            self._fail_unexpected("a comparison such as state=JOB_STATE_RUNNING")
        return _Value(word, False, position)

    def _comparator(self) -> str | None:
        for operator in _COMPARATORS:
            if self.text.startswith(operator, self.pos):
                self.pos += len(operator)
                return operator
        return None

    def _value(self, operator: str) -> _Value:
        position = self.pos + 1
        char = self._peek()
        if char in ('"', "'"):
            return _Value(self._quoted(), True, position)
        if char == "(":
            self._fail(f'value lists in parentheses are not supported (position {position}); '
                       f"write field=A OR field=B")
        start = self.pos
        while not self._at_end() and self.text[self.pos] not in _VALUE_STOP:
            self.pos += 1
        word = self.text[start:self.pos]
        if not word or word in _KEYWORDS:
            self.pos = start
            self._fail_unexpected(f'a value after "{operator}" (quote values that contain '
                                  f"spaces or the words AND, OR, NOT)")
        return _Value(word, False, position)

    def _quoted(self) -> str:
        quote = self.text[self.pos]
        opened_at = self.pos + 1
        self.pos += 1
        chars: list[str] = []
        while not self._at_end():
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return "".join(chars)
            chars.append(char)
        self._fail(f"the string opened at position {opened_at} is not closed; add a closing {quote}")

    def _take_word(self) -> str:
        start = self.pos
        while not self._at_end() and self.text[self.pos] not in _WORD_STOP:
            self.pos += 1
        return self.text[start:self.pos]

    def _next_keyword(self) -> str | None:
        self._skip_space()
        start = self.pos
        word = self._take_word()
        self.pos = start
        return word if word in _KEYWORDS else None

    def _negation_follows(self) -> bool:
        """`NOT` is the keyword only before a space or "(" (AIP-160: NOT WS)."""
        after = self.pos + 3
        return after < len(self.text) and (self.text[after].isspace() or self.text[after] == "(")

    def _skip_space(self) -> None:
        while not self._at_end() and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos] if not self._at_end() else ""

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)

    # -- errors -------------------------------------------------------------------------------

    def _fail(self, problem: str) -> NoReturn:
        raise FilterError(f"Invalid filter {_quote_filter(self.text)}: {problem}")

    def _fail_unexpected(self, expected: str | None = None) -> NoReturn:
        if self._at_end():
            found = "end of filter"
        else:
            start = self.pos
            word = self._take_word()
            self.pos = start
            found = f"token {_show(word or self.text[self.pos])} at position {self.pos + 1}"
        problem = f"unexpected {found}"
        self._fail(f"{problem}; expected {expected}" if expected else problem)

    def _fail_missing_comparator(self, name: str, start: int) -> NoReturn:
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
