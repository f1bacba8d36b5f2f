"""AIP-160's filter grammar, written once for the emulator's filter languages.

The rules are Google's (https://google.aip.dev/160), in this EBNF:

    filter      = [expression]
    expression  = sequence {"AND" sequence}
    sequence    = factor {factor}            juxtaposition is an AND
    factor      = term {"OR" term}
    term        = {"NOT" | "-"} simple
    simple      = restriction | member | "(" expression ")"
    restriction = member comparator value
    member      = part {"." part}

so OR binds tighter than AND; a member alone is AIP-160's global restriction (a search of the
whole item, where a language has one). A language brings its lexicon, the terminals below
(what a bare word, a value, a quoted string and a comparator look like; where the keywords
end), and its meaning: the parser shows each token to the language before it takes it, so the
language checks a restriction the moment its value is read (errors come in text order, as they
did from the hand-written parsers) and enforces its limits (nesting) before going deeper.

The parser is lark's LALR(1) (with its contextual lexer, or its basic one for a language that
types its own tokens): one pass, time linear in the filter, and no recursion in the parse (a
hostile filter cannot exhaust the stack). Each language's parser is built once, on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

RULES = r"""
start: expression?
expression: sequence (AND sequence)*
sequence: factor+
factor: term (OR term)*
term: (NOT | MINUS)* (restriction | member | LPAR expression RPAR)
restriction: member COMPARATOR (VALUE | STRING)
member: (NAME | STRING) (DOT (KEY | STRING))*

LPAR: "("
RPAR: ")"
DOT: "."
MINUS: "-"
%ignore /\s+/
"""
"""The shared rules. A lexicon defines (or `%declare`s, when the language types its own tokens)
NAME (a member's first part), KEY (a part after "."), VALUE (a bare value), STRING,
COMPARATOR, AND, OR and NOT. A NOT or MINUS token may stand for a chain of negations ("- NOT
--"): each "-" and "NOT" in it counts, so a long chain costs the parser one token."""


Leaf = TypeVar("Leaf")


@dataclass(frozen=True)
class And(Generic[Leaf]):
    parts: tuple[Node[Leaf], ...]


@dataclass(frozen=True)
class Or(Generic[Leaf]):
    parts: tuple[Node[Leaf], ...]


@dataclass(frozen=True)
class Not(Generic[Leaf]):
    part: Node[Leaf]


@dataclass(frozen=True)
class Everything:
    """The empty filter."""


Node: TypeAlias = And[Leaf] | Or[Leaf] | Not[Leaf] | Everything | Leaf
"""A parsed filter: the connectives of AIP-160 over the leaves a language made of its
restrictions."""


class SyntaxProblem(Exception):
    """The parser cannot take the text at `position` (0-based; `len(text)` at its end, where
    `at_end`)."""

    def __init__(self, position: int, *, at_end: bool = False) -> None:
        super().__init__(position)
        self.position = position
        self.at_end = at_end


class Grammar:
    """The shared rules with one language's lexicon, compiled to an LALR parser on first use.

    `lexer="contextual"` reads each token as what the parser can take there (a bare word is a
    name before a comparator and a value after it); `"basic"` reads the text the same way
    everywhere, for a language that types its tokens itself (`lex`, then `parse_tokens`)."""

    def __init__(self, lexicon: str, *, lexer: str = "contextual") -> None:
        self._text = RULES + lexicon
        self._lexer = lexer
        self._parser: Lark | None = None
        self._lock = threading.Lock()

    def _lark(self) -> Lark:
        if self._parser is not None:  # built: no lock on the way of every filter
            return self._parser
        with self._lock:
            if self._parser is None:
                self._parser = Lark(self._text, parser="lalr", lexer=self._lexer,
                                    propagate_positions=False, maybe_placeholders=False)
            return self._parser

    def lex(self, text: str) -> list[Token]:
        """Every token of `text` at once; raises `SyntaxProblem` where none can start."""
        tokens: list[Token] = []
        try:
            tokens.extend(self._lark().lex(text))
        except UnexpectedCharacters as error:
            raise SyntaxProblem(error.pos_in_stream or 0) from None
        return tokens

    def parse_tokens(self, tokens: Iterable[Token]) -> Tree[Token]:
        """The parse tree of `tokens`, typed by the language (its terminals: see `RULES`)."""
        interactive = self._lark().parse_interactive()
        try:
            for token in tokens:
                interactive.feed_token(token)
            tree: Tree[Token] = interactive.feed_eof()  # type: ignore[no-untyped-call]
        except UnexpectedToken as error:
            at_end = error.token.type == "$END"
            raise SyntaxProblem(start_of(error.token), at_end=at_end) from None
        return tree

    def parse(self, text: str, on_token: Callable[[Token], None]) -> Tree[Token]:
        """The parse tree of `text`; `on_token` sees each token before the parser takes it
        (and may refuse it by raising). Raises `SyntaxProblem` where the parser cannot go on."""
        interactive = self._lark().parse_interactive(text)
        try:
            for token in interactive.iter_parse():
                on_token(token)
            tree: Tree[Token] = interactive.feed_eof()  # type: ignore[no-untyped-call]
        except UnexpectedToken as error:
            at_end = error.token.type == "$END"
            raise SyntaxProblem(len(text) if at_end else start_of(error.token), at_end=at_end) from None
        except UnexpectedCharacters as error:
            raise SyntaxProblem(error.pos_in_stream or 0) from None
        except UnexpectedInput:  # the end of the text, where more was needed
            raise SyntaxProblem(len(text), at_end=True) from None
        return tree


def start_of(token: Token) -> int:
    """Where `token` starts in the text (0-based); lark sets it on every token it reads."""
    return token.start_pos or 0


def end_of(token: Token) -> int:
    """Where `token` ends in the text (0-based, exclusive)."""
    return token.end_pos or 0


def build(tree: Tree[Token], leaves: Sequence[Leaf]) -> Node[Leaf]:
    """The filter a parse tree stands for, its restrictions replaced, in text order, by the
    leaves the language made of them."""
    expression = tree.children[0] if tree.children else None
    if not isinstance(expression, Tree):
        return Everything()
    return _node(expression, iter(leaves))


def _node(tree: Tree[Token], leaves: Iterator[Leaf]) -> Node[Leaf]:
    # Recursion only per parenthesis (a language limits their depth), never per term.
    kind = tree.data
    if kind in ("restriction", "member"):  # a member here stands alone: a global restriction
        return next(leaves)
    subtrees = [child for child in tree.children if isinstance(child, Tree)]
    if kind == "term":
        negations = sum(child.count("-") + child.count("NOT") for child in tree.children
                        if isinstance(child, Token) and child.type in ("NOT", "MINUS"))
        inner = _node(subtrees[0], leaves)
        return Not(inner) if negations % 2 else inner
    parts = tuple(_node(child, leaves) for child in subtrees)
    if len(parts) == 1:
        return parts[0]
    return Or(parts) if kind == "factor" else And(parts)


def evaluate(node: Node[Leaf], decide: Callable[[Leaf], bool]) -> bool:
    """The truth of a filter whose leaves `decide` answers."""
    if isinstance(node, And):
        return all(evaluate(part, decide) for part in node.parts)
    if isinstance(node, Or):
        return any(evaluate(part, decide) for part in node.parts)
    if isinstance(node, Not):
        return not evaluate(node.part, decide)
    if isinstance(node, Everything):
        return True
    return decide(node)
