"""Parser and evaluator for the LCQL subset that the local search service runs.

A query has the shape ``selector | event types | filter [| projection]``:

- selector: ``*``, or ``plat``, ``hostname`` and ``sid`` compared with ``==``
  or ``!=`` and combined with ``and``, ``or``, ``not`` and parentheses;
- event types: ``*``, or names separated by spaces, commas or ``or``;
- filter: comparisons on ``/`` paths combined with ``and``, ``or``, ``not`` and
  parentheses; it may be empty or ``*``;
- projection: ``path [as alias]`` items separated by spaces or commas.

Paths start at the event record (``event/FILE_PATH``, ``routing/hostname``).
A ``?`` segment matches any element of a list. A ``*`` segment matches any key
or element at its level, and a trailing ``*`` matches every value at any depth
below, so ``event/*`` searches all fields of the event. A comparison holds when
any value the path reaches satisfies it. The negated operators (``!=``,
``is not``, ``not contains``, ...) negate the whole comparison, so they also
hold when the path reaches no value.

Double-quoted literals and bare words compare case-insensitively, single-quoted
literals case-sensitively. Inside quotes a backslash escapes only the quote
character itself; every other backslash is literal, so ``'C:\\Windows'`` is a
path as written. When both sides read as numbers, ``==`` and the
ordering operators compare numbers, so ``EventID == "4663"`` matches 4663.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Platform names of the selector mapped to LimaCharlie's ``routing/plat`` codes.
PLATFORMS = {
    "windows": 0x10000000,
    "linux": 0x20000000,
    "macos": 0x30000000,
    "mac": 0x30000000,
}

#: Selector fields and the ``routing`` key each one reads.
SELECTOR_FIELDS = {"plat": "plat", "hostname": "hostname", "sid": "sid"}

#: Words that start LCQL features this service does not evaluate.
UNSUPPORTED_WORDS = {
    "group",
    "by",
    "count",
    "count_unique",
    "order",
    "limit",
    "sum",
    "avg",
    "min",
    "max",
    "distinct",
    "having",
}

#: Symbolic operators and the comparison each one names.
_OPERATORS = {"==": "eq", "!=": "eq", ">": "gt", "<": "lt", ">=": "ge", "<=": "le"}

_EVENT_TYPE = re.compile(r"^[A-Za-z0-9_]+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_RELATIVE_TIME = re.compile(r"^-\d+[smhdw]$")


class LcqlError(ValueError):
    """Raised for a query that cannot be parsed; the message names the position."""


class UnsupportedLcqlError(LcqlError):
    """Raised for valid LCQL that the local service does not evaluate."""


@dataclass(frozen=True)
class Token:
    """One lexical token: its kind, text (unquoted for strings) and offset."""

    kind: str  # "word", "string", "op", "pipe", "lparen", "rparen", "comma", "end"
    text: str
    pos: int
    case_sensitive: bool = False


def tokenize(query: str) -> list[Token]:
    """Split a query into tokens, keeping each token's offset for error messages."""
    tokens: list[Token] = []
    i = 0
    length = len(query)
    while i < length:
        char = query[i]
        if char.isspace():
            i += 1
        elif char in "\"'":
            start = i
            i += 1
            chars: list[str] = []
            while i < length and query[i] != char:
                # Only the enclosing quote is escaped, so Windows paths and
                # regular expressions keep their backslashes as written.
                if query[i] == "\\" and i + 1 < length and query[i + 1] == char:
                    i += 1
                chars.append(query[i])
                i += 1
            if i >= length:
                raise LcqlError(
                    f"invalid query at position {start}: unterminated string "
                    f"{query[start : start + 20]!r}"
                )
            i += 1
            tokens.append(Token("string", "".join(chars), start, char == "'"))
        elif char in "|(),":
            kind = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma"}[char]
            tokens.append(Token(kind, char, i))
            i += 1
        elif char in "=!<>":
            two = query[i : i + 2]
            if two in ("==", "!=", ">=", "<="):
                tokens.append(Token("op", two, i))
                i += 2
            elif char in "<>":
                tokens.append(Token("op", char, i))
                i += 1
            else:
                raise LcqlError(
                    f"invalid query at position {i}: unexpected {char!r}; "
                    "use == or != to compare"
                )
        else:
            start = i
            while (
                i < length and not query[i].isspace() and query[i] not in "|(),\"'=!<>"
            ):
                i += 1
            tokens.append(Token("word", query[start:i], start))
    tokens.append(Token("end", "", length))
    return tokens


# --- filter expressions -------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A value on the right of a comparison."""

    text: str
    case_sensitive: bool
    number: float | None
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Comparison:
    """``path op literal``; ``negated`` flips the result of the whole comparison."""

    path: tuple[str, ...]
    op: str  # "eq", "contains", "starts", "ends", "matches", "exists", "gt", ...
    literal: Literal | None
    negated: bool = False


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands."""

    op: str
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    """``not`` over one operand."""

    operand: Any


@dataclass(frozen=True)
class Projection:
    """One projected column: the path it reads and the key it is written under."""

    path: tuple[str, ...]
    alias: str


@dataclass
class Query:
    """A parsed query, ready to evaluate against event records."""

    text: str
    selector: Any | None
    event_types: tuple[str, ...] | None  # None means every type
    condition: Any | None
    projection: tuple[Projection, ...] = field(default_factory=tuple)

    def matches(self, record: dict) -> bool:
        """Return whether a ``{"routing", "event"}`` record satisfies the query."""
        routing = record.get("routing")
        if not isinstance(routing, dict):
            routing = {}
        event_types = self.event_types
        if event_types is not None and routing.get("event_type") not in event_types:
            return False
        if self.selector is not None and not evaluate(self.selector, record):
            return False
        return self.condition is None or evaluate(self.condition, record)

    def project(self, record: dict) -> dict:
        """Return the row data: the whole record, or only the projected columns."""
        if not self.projection:
            return record
        row: dict[str, Any] = {}
        for column in self.projection:
            values = list(resolve(record, column.path))
            if any(part in ("*", "?") for part in column.path):
                row[column.alias] = values
            else:
                row[column.alias] = values[0] if values else None
        return row


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.index = 0

    # token helpers

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def is_word(self, *words: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "word" and token.text.lower() in words

    def fail(self, token: Token, expected: str) -> LcqlError:
        found = "end of query" if token.kind == "end" else repr(token.text)
        return LcqlError(
            f"invalid query at position {token.pos}: expected {expected}, found {found}"
        )

    def at_segment_end(self) -> bool:
        return self.peek().kind in ("pipe", "end")

    def expect_segment_end(self, expected: str) -> bool:
        """Consume the ``|`` that ends a segment; return whether there was one."""
        if not self.at_segment_end():
            token = self.peek()
            self.reject_unsupported(token)
            raise self.fail(token, expected)
        if self.peek().kind == "pipe":
            self.advance()
            return True
        return False

    def reject_unsupported(self, token: Token) -> None:
        if token.kind == "word" and token.text.lower() in UNSUPPORTED_WORDS:
            raise UnsupportedLcqlError(
                f"{token.text!r} at position {token.pos} is not supported by the "
                "local service; it evaluates selector | event types | filter | "
                "projection only"
            )

    # segments

    def parse(self) -> Query:
        first = self.peek()
        if first.kind == "word" and _RELATIVE_TIME.match(first.text):
            raise UnsupportedLcqlError(
                f"a time range in the query ({first.text!r} at position "
                f"{first.pos}) is not supported by the local service; send "
                "startTime and endTime instead"
            )
        selector = self.parse_selector()
        if not self.expect_segment_end("'|' after the sensor selector"):
            raise self.fail(self.peek(), "'|' and the event types")
        event_types = self.parse_event_types()
        condition = None
        has_filter = self.expect_segment_end("'|' after the event types")
        if has_filter and not self.at_segment_end():
            if self.peek().kind == "word" and self.peek().text == "*":
                if self.peek(1).kind in ("pipe", "end"):
                    self.advance()
                else:
                    condition = self.parse_or()
            else:
                condition = self.parse_or()
        has_projection = self.expect_segment_end("'and', 'or' or '|' after the filter")
        projection: tuple[Projection, ...] = ()
        if has_projection:
            projection = self.parse_projection()
            if self.peek().kind == "pipe":
                token = self.peek()
                raise UnsupportedLcqlError(
                    f"a fifth stage ('|' at position {token.pos}) is not supported "
                    "by the local service"
                )
            self.expect_segment_end("a projected path or the end of the query")
        return Query(self.query, selector, event_types, condition, projection)

    def parse_selector(self) -> Any | None:
        token = self.peek()
        if token.kind == "word" and token.text == "*":
            self.advance()
            return None
        return self.parse_selector_or()

    def parse_selector_or(self) -> Any:
        operands = [self.parse_selector_and()]
        while self.is_word("or"):
            self.advance()
            operands.append(self.parse_selector_and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def parse_selector_and(self) -> Any:
        operands = [self.parse_selector_term()]
        while self.is_word("and"):
            self.advance()
            operands.append(self.parse_selector_term())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def parse_selector_term(self) -> Any:
        token = self.peek()
        if token.kind == "word" and token.text.lower() == "not":
            self.advance()
            return Not(self.parse_selector_term())
        if token.kind == "lparen":
            self.advance()
            inner = self.parse_selector_or()
            if self.peek().kind != "rparen":
                raise self.fail(self.peek(), "')'")
            self.advance()
            return inner
        if token.kind != "word" or token.text.lower() not in SELECTOR_FIELDS:
            self.reject_unsupported(token)
            raise self.fail(token, "'*', 'plat', 'hostname' or 'sid'")
        self.advance()
        name = token.text.lower()
        op_token = self.advance()
        negated = False
        if op_token.kind == "op" and op_token.text in ("==", "!="):
            negated = op_token.text == "!="
        elif op_token.kind == "word" and op_token.text.lower() == "is":
            if self.is_word("not"):
                self.advance()
                negated = True
        else:
            raise self.fail(op_token, "'==', '!=' or 'is'")
        value = self.advance()
        if value.kind not in ("word", "string") or not value.text:
            raise self.fail(value, f"a value for {name}")
        literal_text = value.text
        if name == "plat" and not _NUMBER.match(literal_text):
            code = PLATFORMS.get(literal_text.lower())
            if code is None:
                raise LcqlError(
                    f"invalid query at position {value.pos}: unknown platform "
                    f"{literal_text!r}; use one of {', '.join(sorted(PLATFORMS))}"
                )
            literal_text = str(code)
        literal = _make_literal(
            literal_text, value.kind == "string" and value.case_sensitive
        )
        return Comparison(("routing", SELECTOR_FIELDS[name]), "eq", literal, negated)

    def parse_event_types(self) -> tuple[str, ...] | None:
        names: list[str] = []
        wildcard = False
        while not self.at_segment_end():
            token = self.advance()
            if token.kind == "comma" or (
                token.kind == "word" and token.text.lower() == "or" and names
            ):
                continue
            if token.kind == "word" and token.text == "*":
                wildcard = True
                continue
            if token.kind != "word" or not _EVENT_TYPE.match(token.text):
                raise self.fail(token, "an event type name such as NEW_PROCESS")
            names.append(token.text.upper())
        if wildcard and names:
            raise LcqlError(
                "invalid query: event types mix '*' with names "
                f"({' '.join(names)}); use one or the other"
            )
        if not wildcard and not names:
            raise self.fail(self.peek(), "'*' or an event type name")
        return None if wildcard else tuple(dict.fromkeys(names))

    def parse_or(self) -> Any:
        operands = [self.parse_and()]
        while self.is_word("or"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def parse_and(self) -> Any:
        operands = [self.parse_not()]
        while self.is_word("and"):
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def parse_not(self) -> Any:
        if self.is_word("not"):
            self.advance()
            return Not(self.parse_not())
        if self.peek().kind == "lparen":
            self.advance()
            inner = self.parse_or()
            if self.peek().kind != "rparen":
                raise self.fail(self.peek(), "')' or 'and'/'or'")
            self.advance()
            return inner
        return self.parse_comparison()

    def parse_path(self) -> tuple[tuple[str, ...], Token]:
        token = self.peek()
        if (
            token.kind != "word"
            or not token.text
            or token.text.lower()
            in (
                "and",
                "or",
                "not",
            )
        ):
            self.reject_unsupported(token)
            raise self.fail(token, "a field path such as event/FILE_PATH")
        self.advance()
        parts = tuple(part for part in token.text.strip("/").split("/") if part)
        if not parts:
            raise self.fail(token, "a field path such as event/FILE_PATH")
        return parts, token

    def parse_comparison(self) -> Comparison:
        path, path_token = self.parse_path()
        name, negated, op_token = self.parse_operator(path_token)
        if name == "exists":
            return Comparison(path, "exists", None, negated)

        value = self.advance()
        if value.kind not in ("word", "string") or (
            value.kind == "word" and value.text.lower() in ("and", "or")
        ):
            raise self.fail(value, f"a value after '{op_token.text}'")
        case_sensitive = value.kind == "string" and value.case_sensitive
        literal = _make_literal(value.text, case_sensitive)
        if name in ("gt", "lt", "ge", "le") and literal.number is None:
            raise self.fail(value, f"a number after '{op_token.text}'")

        if name == "matches":
            flags = 0 if case_sensitive else re.IGNORECASE
            try:
                pattern = re.compile(value.text, flags)
            except re.error as exc:
                raise LcqlError(
                    f"invalid query at position {value.pos}: invalid regular "
                    f"expression {value.text!r}: {exc}"
                ) from None
            literal = Literal(value.text, case_sensitive, literal.number, pattern)
        return Comparison(path, name, literal, negated)

    def parse_operator(self, path_token: Token) -> tuple[str, bool, Token]:
        """Read an operator; return its name, whether it is negated, its token."""
        negated = False
        if self.is_word("not"):
            self.advance()
            negated = True
        token = self.advance()
        lowered = token.text.lower() if token.kind == "word" else None

        if token.kind == "op":
            if negated:
                raise self.fail(
                    token,
                    "'contains', 'starts with', 'ends with', "
                    "'matches' or 'exists' after 'not'",
                )
            return _OPERATORS[token.text], token.text == "!=", token
        if lowered == "is":
            if self.is_word("not"):
                self.advance()
                negated = not negated
            return "eq", negated, token
        if lowered in ("contains", "matches", "exists"):
            return lowered, negated, token
        if lowered in ("starts", "ends"):
            if not self.is_word("with"):
                raise self.fail(self.peek(), f"'with' after '{token.text}'")
            self.advance()
            return lowered, negated, token

        self.reject_unsupported(token)
        raise self.fail(
            token,
            f"an operator after {path_token.text!r} (==, !=, is, contains, "
            "starts with, ends with, matches, exists, >, <, >=, <=)",
        )

    def parse_projection(self) -> tuple[Projection, ...]:
        columns: list[Projection] = []
        while not self.at_segment_end():
            if self.peek().kind == "comma":
                self.advance()
                continue
            token = self.peek()
            self.reject_unsupported(token)
            if token.kind != "word":
                raise self.fail(token, "a projected path such as event/FILE_PATH")
            path, _ = self.parse_path()
            if self.peek().kind == "lparen":
                raise UnsupportedLcqlError(
                    f"function call {token.text!r}(...) at position {token.pos} is "
                    "not supported by the local service"
                )
            alias = "/".join(path)
            if self.is_word("as"):
                self.advance()
                alias_token = self.advance()
                if alias_token.kind not in ("word", "string") or not alias_token.text:
                    raise self.fail(alias_token, "an alias after 'as'")
                alias = alias_token.text
            columns.append(Projection(path, alias))
        if not columns:
            raise self.fail(self.peek(), "a projected path such as event/FILE_PATH")
        return tuple(columns)


def _make_literal(text: str, case_sensitive: bool) -> Literal:
    number = float(text) if _NUMBER.match(text) else None
    folded = text if case_sensitive else text.casefold()
    return Literal(folded, case_sensitive, number)


def parse(query: str) -> Query:
    """Parse a query; raise LcqlError naming the position and token at fault."""
    if not isinstance(query, str) or not query.strip():
        raise LcqlError("invalid query: the query is empty")
    return _Parser(query).parse()


# --- evaluation -------------------------------------------------------------


def resolve(value: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """Yield every value that ``path`` reaches from ``value``."""
    # NOTE: the any-depth reading of a trailing ``*`` and the negation rule for
    # missing fields are this service's choices; LimaCharlie may differ on them.
    if not path:
        yield value
        return
    head, rest = path[0], path[1:]
    if head == "*" and not rest:
        yield from _leaves(value)
        return
    if head in ("*", "?"):
        if isinstance(value, list):
            children: Any = value
        elif isinstance(value, dict) and head == "*":
            children = value.values()
        else:
            return
        for child in children:
            yield from resolve(child, rest)
        return
    if isinstance(value, dict):
        if head in value:
            yield from resolve(value[head], rest)
    elif isinstance(value, list) and head.isdigit():
        position = int(head)
        if position < len(value):
            yield from resolve(value[position], rest)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for child in value.values():
            yield from _leaves(child)
    elif isinstance(value, list):
        for child in value:
            yield from _leaves(child)
    else:
        yield value


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return None


def _compare_one(op: str, value: Any, literal: Literal) -> bool:
    if op in ("gt", "lt", "ge", "le"):
        number = _as_number(value)
        if number is None or literal.number is None:
            return False
        return _ORDERINGS[op](number, literal.number)
    if op == "eq" and literal.number is not None:
        number = _as_number(value)
        if number is not None:
            return number == literal.number
    text = _as_text(value)
    if text is None:
        return False
    if op == "matches":
        assert literal.pattern is not None
        return literal.pattern.search(text) is not None
    if not literal.case_sensitive:
        text = text.casefold()
    return _STRING_TESTS[op](text, literal.text)


_ORDERINGS: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b,
    "lt": lambda a, b: a < b,
    "ge": lambda a, b: a >= b,
    "le": lambda a, b: a <= b,
}

_STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b,
    "contains": lambda a, b: b in a,
    "starts": lambda a, b: a.startswith(b),
    "ends": lambda a, b: a.endswith(b),
}


def evaluate(node: Any, record: dict) -> bool:
    """Evaluate a filter node against one ``{"routing", "event"}`` record."""
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(operand, record) for operand in node.operands)
        return any(evaluate(operand, record) for operand in node.operands)
    if isinstance(node, Not):
        return not evaluate(node.operand, record)
    if node.op == "exists":
        found = any(True for _ in resolve(record, node.path))
    else:
        found = any(
            _compare_one(node.op, value, node.literal)
            for value in resolve(record, node.path)
        )
    return found != node.negated
