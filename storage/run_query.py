"""The run query language: ``val_accuracy > 0.84 and lr < 0.1 and status = 'succeeded'``.

Read by a real parser (a LALR grammar for ``lark``), never by ``eval``; what it builds is a tree
of frozen objects whose names are resolved and whose literals are typed, so that every mistake
is reported with the column where it is before any SQL exists. ``storage.run_query_sql`` turns
the tree into a SQLAlchemy expression with bound parameters. docs/queries.md is the user's guide.

Grammar, in short: comparisons ``NAME OP VALUE`` (=, !=, <, <=, >, >=), ``NAME [not] like
'pattern'``, ``NAME [not] in (V, ...)``, ``NAME is [not] null``, joined with and, or, not and
parentheses (keywords in any case). Values: numbers, 'strings' or "strings" (a quote doubled
inside), true/false, dates as strings ('2026-12-01', '2026-12-01 13:00') and times ago (-7d,
-12h, -30m, -2w). A sort is ``NAME[,NAME...]``, each ``-NAME`` for descending.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from storage.errors import QuerySyntaxError
from storage.records import RunStatus
from storage.run_query_fields import Field, UnknownNameError, ValueType, resolve_field

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

__all__ = [
    "AllOf",
    "AnyOf",
    "Comparison",
    "Condition",
    "Moment",
    "Negation",
    "Operator",
    "QuerySyntaxError",
    "RunQuery",
    "SortKey",
    "parse_run_query",
    "parse_run_sort",
]

GRAMMAR = r"""
start: expr?
sort: sort_key ("," sort_key)*
sort_key: DESCENDING? NAME

?expr: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> negation
    | "(" expr ")"
    | comparison
?comparison: NAME OP value -> compare
    | NAME NOT? LIKE STRING -> like
    | NAME NOT? IN "(" value ("," value)* ")" -> member
    | NAME IS NOT? NULL -> null_test
?value: NUMBER | STRING | AGO | TRUE | FALSE

_OR: "or"i
_AND: "and"i
NOT: "not"i
LIKE: "like"i
IN: "in"i
IS: "is"i
NULL: "null"i
TRUE: "true"i
FALSE: "false"i
DESCENDING: "-"
OP: "==" | "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
NAME: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*/
AGO.2: /-\d+(\.\d+)?[smhdw]\b/
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
STRING: /'(?:[^']|'')*'/ | /"(?:[^"]|"")*"/

%import common.WS
%ignore WS
"""

#: Seconds in each unit of a time ago (``-7d``).
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: The longest time ago a query may name: far enough, and never before year 1.
_MAX_AGO_S = 1000 * 365.25 * 86400


class Operator(StrEnum):
    """What a comparison asks of a name's value."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "like"
    NOT_LIKE = "not like"
    IN = "in"
    NOT_IN = "not in"
    IS_NULL = "is null"
    IS_NOT_NULL = "is not null"

    @property
    def ordering(self) -> bool:
        """True for <, <=, > and >=."""
        return self in (Operator.LT, Operator.LE, Operator.GT, Operator.GE)


_OPERATORS = {"==": Operator.EQ, "<>": Operator.NE} | {op.value: op for op in Operator}


@dataclass(frozen=True)
class Moment:
    """A date literal: a time (UTC), or a time ago; ``whole_day`` for a date without a time,
    which ``=`` and ``!=`` take as the whole day."""

    at: datetime | None = None
    ago: timedelta | None = None
    whole_day: bool = False

    def resolve(self, now: datetime) -> datetime:
        """The time meant, ``now`` being the time of the query."""
        return self.at if self.at is not None else now - (self.ago or timedelta())


#: A literal once typed for the name it is compared with.
Value = float | int | str | bool | Moment


@dataclass(frozen=True)
class Comparison:
    """``field op values``: one value, several for ``in``, none for ``is null``."""

    field: Field
    op: Operator
    values: tuple[Value, ...]
    column: int  # where the name starts (1-based)


@dataclass(frozen=True)
class AllOf:
    """Every condition holds (``and``)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one condition holds (``or``)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    """The condition does not hold (``not``); a missing value matches neither it nor its
    negation, as in SQL."""

    item: Condition


Condition = Comparison | AllOf | AnyOf | Negation


@dataclass(frozen=True)
class RunQuery:
    """A parsed query: ``where`` is None for an empty one (every run)."""

    text: str
    where: Condition | None


@dataclass(frozen=True)
class SortKey:
    """One key of a sort: a field, descending or not."""

    field: Field
    descending: bool = False


def parse_run_query(text: str) -> RunQuery:
    """Parse a ``--where`` query; names are resolved and literals typed.

    Raises:
        QuerySyntaxError: a syntax error, an unknown name (the message suggests the closest
            known ones) or a value of the wrong type, with the column where it is.
    """
    tree = _parse(text, "start")
    where = _condition(tree.children[0], text) if tree.children else None
    return RunQuery(text=text, where=where)


def parse_run_sort(text: str) -> tuple[SortKey, ...]:
    """Parse a ``--sort``: ``-val_accuracy,name`` (``-`` for descending).

    Raises:
        QuerySyntaxError: a syntax error or an unknown name, with its column.
    """
    from lark import Token, Tree

    keys = []
    for key in _parse(text, "sort").children:
        assert isinstance(key, Tree)
        *sign, name = key.children
        assert isinstance(name, Token)
        keys.append(SortKey(_field(name, text), descending=bool(sign)))
    return tuple(keys)


@functools.cache
def _parser() -> Lark:
    from lark import Lark

    return Lark(GRAMMAR, parser="lalr", start=["start", "sort"], maybe_placeholders=False)


def _parse(text: str, start: str) -> Tree[Token]:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    try:
        return _parser().parse(text, start=start)
    except UnexpectedToken as error:
        at_end = error.token.type == "$END"
        column = len(text) + 1 if at_end else _column(error.token)
        found = "the query ends too early" if at_end else f"{str(error.token)!r} here"
        expected = error.accepts or error.expected  # accepts is exact where LALR merged states
        raise QuerySyntaxError(f"{found}: expected {_expected(expected)}", column, text) from None
    except UnexpectedCharacters as error:
        position = int(error.pos_in_stream or 0)
        raise QuerySyntaxError(
            _unexpected_characters(text, position, error.allowed), position + 1, text
        ) from None
    except UnexpectedEOF as error:
        raise QuerySyntaxError(
            f"the query ends too early: expected {_expected(map(str, error.expected))}",
            len(text) + 1,
            text,
        ) from None


#: Grammar terminals in words, in the order an error lists them.
_WORDS = {
    "NAME": "a name (lr, val_accuracy, tags.team, ...)",
    "OP": "an operator (=, !=, <, <=, >, >=, like, in, is null)",
    "NUMBER": "a value (a number, a 'string', true, false, or a time ago like -7d)",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "_AND": "and",
    "_OR": "or",
    "$END": "the end of the query",
    "DESCENDING": "'-'",
}
#: Terminals whose word another terminal of the same set already says.
_SAID_BY = {
    "STRING": "NUMBER",
    "AGO": "NUMBER",
    "TRUE": "NUMBER",
    "FALSE": "NUMBER",
    "LIKE": "OP",
    "IN": "OP",
    "IS": "OP",
    "NOT": "OP",
}


def _expected(terminals: Iterable[str]) -> str:
    names = {_SAID_BY.get(name, name) for name in terminals}
    if "NAME" in names:
        names.discard("OP")  # "not" before a name: a name is what is wanted
    words = [word for name, word in _WORDS.items() if name in names]
    words += sorted(name.lower() for name in names if name not in _WORDS)
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _unexpected_characters(text: str, position: int, allowed: set[str] | None) -> str:
    char = text[position]
    if char in "'\"":
        return f"this string never ends: close it with {char}"
    hints = {"&": "write and", "|": "write or", "!": "write not (or != to compare)"}
    if char in hints:
        return f"{char!r} here: {hints[char]}"
    return f"{char!r} here: expected {_expected(allowed or set())}"


def _column(token: Token) -> int:
    """The 1-based column where ``token`` starts in the query."""
    return (token.start_pos or 0) + 1


def _field(token: Token, text: str) -> Field:
    try:
        return resolve_field(str(token))
    except UnknownNameError as error:
        raise QuerySyntaxError(str(error.args[0]), _column(token), text) from None


def _condition(node: Tree[Token] | Token, text: str) -> Condition:
    from lark import Tree

    assert isinstance(node, Tree)
    children = node.children
    if node.data == "and_expr":
        return AllOf(tuple(_condition(child, text) for child in children))
    if node.data == "or_expr":
        return AnyOf(tuple(_condition(child, text) for child in children))
    if node.data == "negation":
        return Negation(_condition(children[-1], text))
    tokens = [child for child in children if not isinstance(child, Tree)]
    name, words = tokens[0], [str(token).lower() for token in tokens[1:]]
    field = _field(name, text)
    if node.data == "compare":
        op = _OPERATORS[str(tokens[1])]
        values: list[Token] = [tokens[2]]
    elif node.data == "like":
        op = Operator.NOT_LIKE if "not" in words else Operator.LIKE
        values = [tokens[-1]]
    elif node.data == "member":
        op = Operator.NOT_IN if words[0] == "not" else Operator.IN
        values = tokens[3 if words[0] == "not" else 2 :]
    else:
        op = Operator.IS_NOT_NULL if "not" in words else Operator.IS_NULL
        values = []
    typed = tuple(_typed(field, str(name), op, value, text) for value in values)
    return Comparison(field, op, typed, _column(name))


def _typed(field: Field, typed_name: str, op: Operator, token: Token, text: str) -> Value:
    """``token`` as a value of ``field``'s type, or an error at the token's column."""
    kind, raw = token.type, str(token)
    column = _column(token)

    def refuse(why: str) -> QuerySyntaxError:
        return QuerySyntaxError(f"{typed_name} {op.value} {raw}: {why}", column, text)

    if op in (Operator.LIKE, Operator.NOT_LIKE):
        if field.type not in (ValueType.TEXT, ValueType.STATUS):
            raise refuse(f"like compares text, and {typed_name} is a {field.type.value}")
        pattern = _string(raw)
        if (len(pattern) - len(pattern.rstrip("\\"))) % 2:
            raise refuse("a pattern cannot end with a lone \\ (it escapes the next character)")
        return pattern
    if field.type is ValueType.NUMBER:
        if kind != "NUMBER":
            raise refuse(f"{typed_name} is a number: compare it with one, unquoted")
        number = _number(raw)
        if not math.isfinite(number):
            raise refuse("too large a number")
        return number
    if field.type is ValueType.BOOL:
        if kind not in ("TRUE", "FALSE") or op.ordering:
            raise refuse(f"{typed_name} is true or false: write {typed_name} = true")
        return kind == "TRUE"
    if field.type is ValueType.DATE:
        return _moment(typed_name, kind, raw, refuse)
    if kind == "NUMBER" and not op.ordering:
        return raw  # tags.epochs = 3 means the text 3
    if kind != "STRING":
        raise refuse(f"{typed_name} is text: quote the value ('...')")
    value = _string(raw)
    if field.type is ValueType.STATUS and not op.ordering and value not in set(RunStatus):
        statuses = ", ".join(status.value for status in RunStatus)
        raise refuse(f"a status is one of {statuses}")
    return value


def _moment(name: str, kind: str, raw: str, refuse: Callable[[str], QuerySyntaxError]) -> Moment:
    if kind == "AGO":
        seconds = float(raw[1:-1]) * _UNIT_S[raw[-1]]
        if seconds > _MAX_AGO_S:
            raise refuse("too long ago: at most 1,000 years (-52000w)")
        return Moment(ago=timedelta(seconds=seconds))
    example = f"{name} > '2026-12-01' or {name} > -7d"
    if kind != "STRING":
        raise refuse(f"{name} is a date: write {example}")
    value = _string(raw).strip()
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise refuse(f"not a date; write {example}") from None
    try:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        at + timedelta(days=1)  # a whole day's end must be a time too
    except OverflowError:
        raise refuse("a date must fall within the years 1-9999") from None
    return Moment(at=at, whole_day=_DATE_ONLY.fullmatch(value) is not None)


#: Integers past 64 bits are compared as floats: no database driver binds them as integers.
_MAX_INT = 2**63 - 1


def _number(raw: str) -> float | int:
    try:
        number = int(raw)
    except ValueError:
        return float(raw)
    return number if -_MAX_INT <= number <= _MAX_INT else float(number)


def _string(raw: str) -> str:
    quote = raw[0]
    return raw[1:-1].replace(quote * 2, quote)
