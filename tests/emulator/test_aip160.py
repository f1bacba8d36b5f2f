"""The shared AIP-160 grammar (`gcpjobs.emulator.aip160`), with a toy lexicon.

The two filter languages built on it (ListCustomJobs' and Cloud Logging's) are tested in
test_filters.py and logging/test_filters.py; here, what the grammar itself promises: AIP-160's
precedence, flat negation chains, restrictions handed over in text order, global restrictions,
where a refusal is, and one parser per language.
"""

from __future__ import annotations

import time

import pytest
from lark import Token

from gcpjobs.emulator import aip160

# A toy language: words, double-quoted strings, "=" and ":"; keywords in upper case.
TOY = aip160.Grammar(r"""
NAME: /[a-z_][a-z_0-9]*/
KEY: /[a-z_0-9]+/
VALUE: /[a-z_0-9]+/
STRING: /"[^"]*"/
COMPARATOR: /[=:]/
AND.2: "AND"
OR.2: "OR"
NOT.2: "NOT"
""")


def parse(text: str) -> aip160.Node[str]:
    """`text` parsed, each leaf the text of its restriction (or of its global member)."""
    leaves: list[str] = []
    pending: list[str] = []
    phase = ["operand"]

    def flush() -> None:
        leaves.append("".join(pending))
        pending.clear()
        phase[0] = "connector"

    def take(token: Token) -> None:
        kind = token.type
        if phase[0] == "value":
            pending.append(token.value)
            flush()
            return
        if phase[0] == "member" and kind not in ("DOT", "COMPARATOR"):
            flush()  # the member stood alone: a global restriction
        if kind in ("NAME", "KEY", "STRING"):
            pending.append(token.value)
            phase[0] = "member"
        elif kind in ("DOT", "COMPARATOR"):
            pending.append(token.value)
            phase[0] = "dot" if kind == "DOT" else "value"
        else:
            phase[0] = "connector" if kind == "RPAR" else "operand"

    tree = TOY.parse(text, take)
    if phase[0] == "member":
        flush()
    return aip160.build(tree, leaves)


def test_empty_filter_is_everything() -> None:
    assert parse("") == aip160.Everything()
    assert parse("   ") == aip160.Everything()
    assert aip160.evaluate(parse(""), lambda leaf: False)


def test_or_binds_tighter_than_and_and_juxtaposition() -> None:
    assert parse("a=1 AND b=2 OR c=3") == aip160.And(("a=1", aip160.Or(("b=2", "c=3"))))
    assert parse("a=1 b=2 OR c=3") == aip160.And(("a=1", aip160.Or(("b=2", "c=3"))))
    assert parse("(a=1 AND b=2) OR c=3") == aip160.Or((aip160.And(("a=1", "b=2")), "c=3"))


def test_negation_binds_tightest_and_chains_stay_flat() -> None:
    assert parse("NOT a=1 OR b=2") == aip160.Or((aip160.Not("a=1"), "b=2"))
    assert parse("-a=1") == aip160.Not("a=1")
    assert parse("NOT " * 5000 + "a=1") == "a=1"  # no recursion per NOT
    assert parse("-" * 5001 + "(a=1)") == aip160.Not("a=1")


def test_restrictions_and_global_members_come_in_text_order() -> None:
    assert parse('x.y:"v" z a.b=c') == aip160.And(('x.y:"v"', "z", "a.b=c"))
    assert parse('x=1 AND z') == aip160.And(("x=1", "z"))


def test_evaluate_decides_each_leaf() -> None:
    node = parse("a=1 (b=2 OR NOT c=3)")
    assert aip160.evaluate(node, lambda leaf: leaf == "a=1")  # NOT c=3 holds
    assert not aip160.evaluate(node, lambda leaf: leaf in ("a=1", "c=3"))


@pytest.mark.parametrize(("text", "position", "at_end"), [
    ("a=1 AND", 7, True),
    ("(a=1", 4, True),
    ("a=1)", 3, False),
    ("a==1", 2, False),
    ("a=1 ?", 4, False),  # no terminal starts with "?"
    ("()", 1, False),
])
def test_a_refusal_says_where(text: str, position: int, at_end: bool) -> None:
    with pytest.raises(aip160.SyntaxProblem) as refused:
        parse(text)
    assert (refused.value.position, refused.value.at_end) == (position, at_end)


def test_the_language_sees_each_token_before_the_parser_takes_it() -> None:
    seen: list[str] = []

    def refuse_b(token: Token) -> None:
        seen.append(token.value)
        if token == "b":
            raise ValueError("b")

    with pytest.raises(ValueError):
        TOY.parse("a=1 b=2 ) ) )", refuse_b)  # refused at b, before the stray ")"s
    assert seen == ["a", "=", "1", "b"]


def test_pre_typed_tokens_parse_the_same() -> None:
    tokens = [Token("NAME", "a", 0), Token("COMPARATOR", "=", 1), Token("VALUE", "1", 2),
              Token("OR", "OR", 4), Token("NAME", "b", 7)]
    tree = TOY.parse_tokens(tokens)
    assert aip160.build(tree, ["a=1", "b"]) == aip160.Or(("a=1", "b"))
    with pytest.raises(aip160.SyntaxProblem) as refused:
        TOY.parse_tokens(tokens[:4])
    assert refused.value.at_end


def test_a_long_filter_parses_in_linear_time() -> None:
    def seconds(terms: int) -> float:
        text = " AND ".join(f"k{i}=v{i} OR NOT k{i}:w" for i in range(terms))
        started = time.perf_counter()
        parse(text)
        return time.perf_counter() - started

    seconds(10)  # the parser is built on first use
    small, large = min(seconds(200) for _ in range(3)), min(seconds(2000) for _ in range(3))
    assert large < small * 40  # ten times the text: about ten times the time, never a hundred


def test_the_parser_is_built_once() -> None:
    parse("a=1")
    first = TOY._lark()
    parse("b=2")
    assert TOY._lark() is first
