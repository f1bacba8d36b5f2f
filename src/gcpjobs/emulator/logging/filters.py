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

The grammar is the one of `gcpjobs.emulator.aip160` (shared with ListCustomJobs filters); this
module brings Cloud Logging's lexicon, its reading of words (AND and OR are search words where
a term is due, `-word` negates) and its meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lark import Token

from gcpjobs.emulator import aip160

SEVERITIES: Mapping[str, int] = {
    "DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400, "ERROR": 500,
    "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}
_TIME_FIELDS = {"timestamp", "receiveTimestamp", "receive_timestamp"}
MAX_FILTER_LENGTH = 20_000  # Cloud Logging's documented maximum for a query
# Cloud Logging documents no nesting limit; 32 keeps the parse tree's recursive reading (a few
# frames per level) far from Python's recursion limit, as the Vertex filter parser does.
MAX_NESTING = 32


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


# The lexicon of Cloud Logging filters, read the same way everywhere: a word runs to a space,
# a parenthesis, a quote or an operator character and may hold quoted pieces
# (labels."run.googleapis.com/x"); strings are double-quoted. The reader types each word
# itself (keyword, negation, field, value), as its meaning depends on where it stands.
_LEXICON = r"""
NAME: /[^\s()=!<>:"]+(?:"(?:[^"\\]|\\.)*"[^\s()=!<>:"]*)*/
STRING: /"(?:[^"\\]|\\.)*"/
COMPARATOR: /=~|!~|!=|<=|>=|=|<|>|:/
%declare KEY VALUE AND OR NOT
"""
_GRAMMAR = aip160.Grammar(_LEXICON, lexer="basic")


def _tokens(text: str) -> list[Token]:
    """Every token of `text`, read before any is parsed (so an unreadable filter is refused as
    such, whatever else is wrong with it)."""
    try:
        tokens = _GRAMMAR.lex(text)
    except aip160.SyntaxProblem as problem:
        tokens = _GRAMMAR.lex(text[:problem.position])  # what was read, to say where it stopped
        position = aip160.end_of(tokens[-1]) if tokens else 0
        raise FilterError(f"Unparseable filter at position {position}: "
                          f"{text[position:position + 20]!r}") from None
    # lark reads a word that is just "." or "-" as the shared grammar's DOT or MINUS; here
    # both are words like any other.
    return [Token.new_borrow_pos("NAME", token.value, token) if token.type in ("DOT", "MINUS")
            else token for token in tokens]


class _Reader:
    """Types the tokens of a filter (or of a part of it) for the shared grammar and gives each
    comparison its meaning as soon as its value is read."""

    def __init__(self, text: str) -> None:
        self.text = text
        # operand: a term comes next; member: after a word that a comparator may follow;
        # value: after the comparator; connector: after a comparison, a search or ")".
        self.phase = "operand"
        self.depth = 0  # open parentheses, bounded by MAX_NESTING
        self.field: Token | None = None
        self.operator = ""
        self.leaves: list[Predicate] = []

    def parse(self, tokens: list[Token]) -> Predicate:
        if not tokens:
            return lambda view: True
        try:
            tree = _GRAMMAR.parse_tokens(self._typed(tokens))
        except aip160.SyntaxProblem:  # only the end of the filter can come too early
            raise FilterError(f"Unexpected end of filter: {self.text!r}") from None
        node = aip160.build(tree, self.leaves)
        return lambda view: aip160.evaluate(node, lambda leaf: leaf(view))

    def _typed(self, tokens: list[Token]) -> Iterator[Token]:
        for token in tokens:
            if self.phase == "member" and token.type != "COMPARATOR":
                self._search()
            if token.type == "NAME":
                yield from self._word(token)
            elif token.type == "STRING":
                yield self._value(token) if self.phase == "value" else self._member(token)
            elif self.phase == "value":
                assert self.field is not None
                raise FilterError(f"Missing value after {self.field.value}{self.operator} in "
                                  f"filter {self.text!r}")
            elif token.type == "COMPARATOR" and self.phase == "member":
                self.operator = token.value
                self.phase = "value"
                yield token
            elif token.type == "LPAR":
                if self.depth >= MAX_NESTING:
                    raise FilterError(f"Invalid filter: parentheses nest deeper than {MAX_NESTING} "
                                      "levels; simplify the filter")
                self.depth += 1
                self.phase = "operand"
                yield token
            elif token.type == "RPAR" and self.phase != "operand" and self.depth:
                self.depth -= 1
                self.phase = "connector"
                yield token
            else:  # an operator or ")" where a term or a connective must come
                raise FilterError(f"Unexpected {token.value!r} in filter {self.text!r}")
        if self.phase == "member":
            self._search()

    def _word(self, token: Token) -> Iterator[Token]:
        if self.phase == "value":
            yield self._value(token)
            return
        word = str(token.value)
        if word.startswith("-") and len(word) > 1:
            # Each leading "-" negates, down to a last character (even a "-"): one token.
            dashes = min(len(word) - len(word.lstrip("-")), len(word) - 1)
            yield Token.new_borrow_pos("MINUS", "-" * dashes, token)
            word = word[dashes:]
            self.phase = "operand"
        if (word in ("AND", "OR") and self.phase == "connector") or word == "NOT":
            yield Token.new_borrow_pos(word, word, token)
            self.phase = "operand"
        else:  # a field, or a search where no comparator follows; AND and OR too, as a term
            yield self._member(Token.new_borrow_pos("NAME", word, token))

    def _member(self, token: Token) -> Token:
        self.field = token
        self.phase = "member"
        return token

    def _search(self) -> None:
        assert self.field is not None
        text = self.field.value
        needle = _unquote(text).lower() if self.field.type == "STRING" else text.lower()
        self.leaves.append(lambda view: needle in view.text.lower())
        self.phase = "connector"

    def _value(self, token: Token) -> Token:
        assert self.field is not None
        value = _unquote(token.value) if token.type == "STRING" else token.value
        comparison = Comparison(_path(self.field.value), self.operator, value)
        self.leaves.append(_comparison(comparison))
        self.phase = "connector"
        return Token.new_borrow_pos("VALUE", token.value, token) if token.type == "NAME" else token


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


def _is_operand(token: Token) -> bool:
    return token.type in ("NAME", "STRING")


def _literal(token: Token) -> str:
    return _unquote(token.value) if token.type == "STRING" else str(token.value)


def _equalities(tokens: list[Token]) -> dict[str, str]:
    pinned: dict[str, str] = {}
    for field, op, value in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if _is_operand(field) and op.type == "COMPARATOR" and op == "=" and _is_operand(value):
            pinned[".".join(_path(field.value))] = _literal(value)
    return pinned


def _time_floor(tokens: list[Token]) -> str | None:
    """The latest lower bound on `timestamp` among AND-ed comparisons (see `Alternative`)."""
    floor: str | None = None
    for field, op, value in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (_is_operand(field) and _path(field.value) == ("timestamp",) and op.type == "COMPARATOR"
                and op in (">=", ">") and _is_operand(value)):
            bound = parse_time(_literal(value)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            floor = bound if floor is None or bound > floor else floor
    return floor


def _is_or(token: Token) -> bool:
    return token.type == "NAME" and token == "OR"


def _alternatives(text: str, tokens: list[Token], whole: Predicate) -> tuple[Alternative, ...]:
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
        if index >= len(tokens) or tokens[index].type != "LPAR":
            return anything
        end = next((at for at in range(index + 1, len(tokens)) if tokens[at].type in ("LPAR", "RPAR")),
                   None)
        if end is None or tokens[end].type != "RPAR":
            return anything
        body = tokens[index + 1:end]
        if any(_is_or(token) for token in body) or not body:
            return anything
        groups.append(Alternative(_equalities(body), _Reader(text).parse(body), _time_floor(body)))
        index = end + 1
        if index == len(tokens):
            return tuple(groups)
        if not _is_or(tokens[index]):
            return anything
        index += 1


def parse_filter(text: str) -> Filter:
    """Parse a Logging filter; raises FilterError (one line) for what it cannot parse."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"The filter is {len(text)} characters long; Cloud Logging's maximum is "
                          f"{MAX_FILTER_LENGTH}")
    if "\x00" in text:
        raise FilterError("The filter contains a NUL character")
    tokens = _tokens(text)
    whole = _Reader(text).parse(tokens)
    return Filter(text, whole, _alternatives(text, tokens, whole))
