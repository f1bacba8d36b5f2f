"""The Cloud Logging query language, as far as job logs need it.

Supported: comparisons `FIELD OP VALUE` with `=`, `!=`, `<`, `<=`, `>`, `>=`, `:` (has, case
insensitive substring), `=~` / `!~` (regular expressions); `AND`, `OR`, `NOT` / `-`,
parentheses, and juxtaposition (an implicit AND). As in Cloud Logging (and unlike most
languages), OR binds tighter than AND: `a AND b OR c` is `a AND (b OR c)`. A bare value is a
search of the entry's text. Fields: `resource.type`, `resource.labels.KEY`, `labels.KEY`
(quoted keys such as `labels."run.googleapis.com/execution_name"`), `logName`, `severity`
(names or numbers, compared by rank), `timestamp` and `receiveTimestamp` (RFC 3339, compared as
times), `insertId`, `textPayload`. Any other field is absent on every entry (so `=` is false and
`!=` true), as an absent field is in Cloud Logging.

Limits: a filter is at most 20,000 characters (Cloud Logging's documented maximum),
parentheses nest at most 32 deep, and NUL characters are refused. `=~` and `!~` take RE2
syntax (as Cloud Logging documents) and run on RE2, in time linear in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SEVERITIES: Mapping[str, int] = {
    "DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400, "ERROR": 500,
    "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}
_TIME_FIELDS = {"timestamp", "receiveTimestamp", "receive_timestamp"}
MAX_FILTER_LENGTH = 20_000  # Cloud Logging's documented maximum for a query
# Cloud Logging documents no nesting limit; 32 keeps the recursive parser (a few frames per
# level) far from Python's recursion limit, as the Vertex filter parser does.
MAX_NESTING = 32
_OPS = ("=~", "!~", "!=", "<=", ">=", "=", "<", ">", ":")
_TOKEN = re.compile(
    r'\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<op>=~|!~|!=|<=|>=|=|<|>|:)|'
    r'(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()=!<>:"]+(?:"(?:[^"\\]|\\.)*"[^\s()=!<>:"]*)*))'
)


class FilterError(ValueError):
    """A filter the emulator cannot parse (INVALID_ARGUMENT for the client)."""


class EntryView:
    """What a filter can see of one entry."""

    def __init__(self, fields: Mapping[str, str], labels: Mapping[str, str],
                 resource_labels: Mapping[str, str], text: str) -> None:
        self.fields = fields  # resource.type, logName, severity (name), timestamp, insertId
        self.labels = labels
        self.resource_labels = resource_labels
        self.text = text

    def value(self, path: tuple[str, ...]) -> str | None:
        if path[:2] == ("resource", "labels") and len(path) == 3:
            return self.resource_labels.get(path[2])
        if path[0] == "labels" and len(path) == 2:
            return self.labels.get(path[1])
        if path in (("textPayload",), ("text_payload",)):
            return self.text
        return self.fields.get(".".join(path))


Predicate = Callable[[EntryView], bool]


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    op: str
    value: str


@dataclass(frozen=True)
class Alternative:
    """Entries that match `predicate`, all of which meet the equalities `pinned`
    ("resource.labels.job_id" -> "123" ...; {}: any entry may match)."""

    pinned: Mapping[str, str]
    predicate: Predicate
    # The latest `timestamp >= T` (or `>`) the alternative requires, as entries write their
    # time: a reader may skip what is older (a follower asks for the last seconds only).
    floor: str | None = None


@dataclass(frozen=True)
class Filter:
    """A parsed filter: `matches(view)`, and the same as alternatives an entry matches one of,
    each pinned to the jobs it can match (to read only their logs)."""

    text: str
    predicate: Predicate
    alternatives: tuple[Alternative, ...]

    def matches(self, view: EntryView) -> bool:
        return self.predicate(view)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (any fraction length, `Z` or an offset) as an aware datetime."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)?", text.strip())
    if match is None:
        raise FilterError(f'Invalid timestamp "{text}": use RFC 3339, e.g. "2024-05-01T12:00:00Z"')
    base, fraction, zone = match.groups()
    if zone is not None and len(zone) == 5:  # +0000, as google-cloud-logging writes it
        zone = f"{zone[:3]}:{zone[3:]}"
    try:  # well shaped yet impossible (month 13, hour 25, offset +99:00): refused the same way
        moment = datetime.fromisoformat(base.replace("t", "T").replace(" ", "T") + (
            "" if zone in (None, "Z", "z") else zone))
    except ValueError:
        raise FilterError(f'Invalid timestamp "{text}": use RFC 3339, e.g. "2024-05-01T12:00:00Z"') from None
    if zone in (None, "Z", "z"):
        moment = moment.replace(tzinfo=timezone.utc)
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    return moment.replace(microsecond=micros).astimezone(timezone.utc)


def severity_rank(text: str) -> int:
    value = text.strip().upper()
    if value.isdigit():
        return int(value)
    if value not in SEVERITIES:
        raise FilterError(f'Invalid severity "{text}": use one of {", ".join(SEVERITIES)} or a number')
    return SEVERITIES[value]


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _regex(field: str, value: str) -> Any:
    """`value` compiled by RE2, the engine (and syntax) Cloud Logging documents for `=~`: it
    runs in time linear in the text, where Python's `re` backtracks exponentially on
    `^(a+)+$` and holds the GIL meanwhile. RE2 refuses what needs backtracking
    (backreferences, lookaround); that refusal is the client's INVALID_ARGUMENT."""
    import re2  # lazy: only filters with a regex pay for the import

    options = re2.Options()
    options.log_errors = False  # the refusal goes to the client, not to the emulator's stderr
    try:
        return re2.compile(value, options)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise FilterError(f"Invalid regular expression {_one_line(value)} for {field}: {reason} "
                          "(the syntax is RE2's: no backreferences or lookaround)") from None


def _one_line(text: str) -> str:
    shown = text if len(text) <= 200 else text[:200] + "…"
    return json.dumps(shown, ensure_ascii=False)


def _comparison(comparison: Comparison) -> Predicate:
    path, op, value = comparison.path, comparison.op, comparison.value
    field = ".".join(path)
    if op in ("=~", "!~"):
        pattern = _regex(field, value)
        wanted = op == "=~"
        return lambda view: (v := view.value(path)) is not None and bool(pattern.search(v)) == wanted
    if op == ":":
        needle = value.lower()
        return lambda view: (v := view.value(path)) is not None and needle in v.lower()
    if field == "severity":
        rank = severity_rank(value)
        return lambda view: _compare(op, SEVERITIES.get(view.fields.get("severity", "DEFAULT"), 0), rank)
    if field in _TIME_FIELDS:
        moment = parse_time(value)
        return lambda view: (v := view.value(path)) is not None and _compare(op, parse_time(v), moment)

    def compare(view: EntryView) -> bool:
        present = view.value(path)
        if present is None:
            return op == "!="
        return _compare(op, present, value)

    return compare


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]] | None = None) -> None:
        """A parser of `text`, or of `tokens` (a part of it) when given."""
        self.text = text
        self.index = 0
        self.depth = 0  # open parentheses: recursion, bounded by MAX_NESTING
        if tokens is not None:
            self.tokens = list(tokens)
            return
        self.tokens = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None:
                raise FilterError(f"Unparseable filter at position {position}: {text[position:position + 20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError(f"Unexpected end of filter: {self.text!r}")
        self.index += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda view: True
        predicate = self.conjunction()
        if self.peek() is not None:
            raise FilterError(f"Unexpected {self.peek()[1]!r} in filter {self.text!r}")  # type: ignore[index]
        return predicate

    def conjunction(self) -> Predicate:
        parts = [self.disjunction()]
        while (token := self.peek()) is not None and token[0] != "rparen":
            if token == ("word", "AND"):
                self.take()
            parts.append(self.disjunction())
        return parts[0] if len(parts) == 1 else (lambda view: all(p(view) for p in parts))

    def disjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.peek() == ("word", "OR"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda view: any(p(view) for p in parts))

    def negation(self) -> Predicate:
        negations = 0
        while True:  # a loop, not recursion: "NOT NOT NOT ..." must not exhaust the stack
            token = self.peek()
            if token == ("word", "NOT"):
                self.take()
            elif token is not None and token[0] == "word" and token[1].startswith("-") and len(token[1]) > 1:
                self.tokens[self.index] = ("word", token[1][1:])
            else:
                break
            negations += 1
        inner = self.primary()
        return (lambda view: not inner(view)) if negations % 2 else inner

    def primary(self) -> Predicate:
        kind, text = self.take()
        if kind == "lparen":
            if self.depth >= MAX_NESTING:
                raise FilterError(f"Invalid filter: parentheses nest deeper than {MAX_NESTING} "
                                  "levels; simplify the filter")
            self.depth += 1
            inner = self.conjunction()
            if self.take()[0] != "rparen":
                raise FilterError(f"Missing ')' in filter {self.text!r}")
            self.depth -= 1
            return inner
        if kind in ("word", "string"):
            following = self.peek()
            if following is not None and following[0] == "op":
                return _comparison(self.comparison(text))
            needle = _unquote(text).lower() if kind == "string" else text.lower()
            return lambda view: needle in view.text.lower()
        raise FilterError(f"Unexpected {text!r} in filter {self.text!r}")

    def comparison(self, field_text: str) -> Comparison:
        op = self.take()[1]
        kind, value = self.take()
        if kind not in ("word", "string"):
            raise FilterError(f"Missing value after {field_text}{op} in filter {self.text!r}")
        return Comparison(_path(field_text), op, _unquote(value) if kind == "string" else value)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _path(text: str) -> tuple[str, ...]:
    """`labels."run.googleapis.com/execution_name"` -> ("labels", "run.googleapis.com/execution_name")."""
    parts: list[str] = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|([^."]+)', text):
        parts.append(match.group(1) if match.group(1) is not None else match.group(2))
    if not parts:
        raise FilterError(f"Invalid field name {text!r}")
    return tuple(parts)


def _equalities(tokens: list[tuple[str, str]]) -> dict[str, str]:
    pinned: dict[str, str] = {}
    for index in range(len(tokens) - 2):
        (k1, field), (k2, op), (k3, value) = tokens[index], tokens[index + 1], tokens[index + 2]
        if k1 in ("word", "string") and k2 == "op" and op == "=" and k3 in ("word", "string"):
            pinned[".".join(_path(field))] = _unquote(value) if k3 == "string" else value
    return pinned


def _time_floor(tokens: list[tuple[str, str]]) -> str | None:
    """The latest lower bound on `timestamp` among AND-ed comparisons (see `Alternative`)."""
    floor: str | None = None
    for index in range(len(tokens) - 2):
        (k1, field), (k2, op), (k3, value) = tokens[index], tokens[index + 1], tokens[index + 2]
        if (k1 in ("word", "string") and _path(field) == ("timestamp",) and k2 == "op"
                and op in (">=", ">") and k3 in ("word", "string")):
            moment = parse_time(_unquote(value) if k3 == "string" else value)
            bound = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            floor = bound if floor is None or bound > floor else floor
    return floor


def _alternatives(text: str, tokens: list[tuple[str, str]], whole: Predicate) -> tuple[Alternative, ...]:
    """The filter as alternatives: its equalities, for a filter of AND-ed comparisons; one per
    group of `(...) OR (...) ...` (as gcpjobs' log watcher asks for many jobs at once), each
    with its own predicate, so an entry is checked against its own job's group only; for
    anything else, one alternative that may match any entry."""
    anything = (Alternative({}, whole),)
    if re.search(r"\bNOT\b|(^|\s)-", text):
        return anything
    if not re.search(r"\bOR\b|[()]", text):
        return (Alternative(_equalities(tokens), whole, _time_floor(tokens)),)
    groups: list[Alternative] = []
    index = 0
    while True:
        if index >= len(tokens) or tokens[index][0] != "lparen":
            return anything
        end = next((at for at in range(index + 1, len(tokens)) if tokens[at][0] in ("lparen", "rparen")),
                   None)
        if end is None or tokens[end][0] != "rparen":
            return anything
        body = tokens[index + 1:end]
        if ("word", "OR") in body or not body:
            return anything
        groups.append(Alternative(_equalities(body), _Parser(text, body).parse(), _time_floor(body)))
        index = end + 1
        if index == len(tokens):
            return tuple(groups)
        if tokens[index] != ("word", "OR"):
            return anything
        index += 1


def parse_filter(text: str) -> Filter:
    """Parse a Logging filter; raises FilterError (one line) for what it cannot parse."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"The filter is {len(text)} characters long; Cloud Logging's maximum is "
                          f"{MAX_FILTER_LENGTH}")
    if "\x00" in text:
        raise FilterError("The filter contains a NUL character")
    parser = _Parser(text)
    tokens = list(parser.tokens)
    whole = parser.parse()
    return Filter(text, whole, _alternatives(text, tokens, whole))
