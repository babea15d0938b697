"""A parsed run query (``storage.run_query``) as a SQLAlchemy expression over ``runs``.

Every value is a bound parameter; the only text that reaches SQL is fixed here. PostgreSQL and
SQLite must return the same rows, which takes care where they differ:

* JSON values are read only when of the expected JSON type (``json_type``/``jsonb_typeof``), so a
  number is compared as a number on both, and a value of another type reads as missing instead
  of failing a cast on PostgreSQL or comparing as text on SQLite;
* ``like`` is case-insensitive on both (SQLite's LIKE is, PostgreSQL's is not), with ``\\`` as
  the escape character on both;
* text orders by code point on both (``COLLATE "C"`` on PostgreSQL, SQLite's default);
* a missing value sorts last both ways (the two disagree on where NULL goes by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    case,
    func,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import UnaryExpression

from storage.column_types import UTCDateTime
from storage.models import EvaluationRow, Run, ValidationMetricRow
from storage.run_query import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Moment,
    Negation,
    Operator,
    SortKey,
    Value,
)
from storage.run_query_fields import Field, Source, ValueType

#: What ``json_type`` (SQLite) and ``jsonb_typeof`` (PostgreSQL) say for each JSON kind we read.
_JSON_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "sqlite": {"number": ("integer", "real"), "text": ("text",), "boolean": ("true", "false")},
    "postgresql": {"number": ("number",), "text": ("string",), "boolean": ("boolean",)},
}


def run_condition(condition: Condition, dialect: str, now: datetime) -> ColumnElement[bool]:
    """``condition`` as a WHERE clause on ``runs`` for ``dialect`` ("sqlite" or "postgresql");
    times ago (``-7d``) are counted back from ``now``."""
    if isinstance(condition, AllOf):
        return and_(*(run_condition(item, dialect, now) for item in condition.items))
    if isinstance(condition, AnyOf):
        return or_(*(run_condition(item, dialect, now) for item in condition.items))
    if isinstance(condition, Negation):
        return not_(run_condition(condition.item, dialect, now))
    return _comparison(condition, dialect, now)


def sort_order(keys: Sequence[SortKey], dialect: str) -> list[UnaryExpression[Any]]:
    """ORDER BY for ``keys``: missing values last either way, ties newest first (by id)."""
    order = []
    for key in keys:
        value = _ordered(key.field, field_value(key.field, dialect), dialect)
        order.append((value.desc() if key.descending else value.asc()).nulls_last())
    return [*order, Run.id.desc()]


def field_value(field: Field, dialect: str) -> ColumnElement[Any]:
    """The SQL value of ``field`` for a row of ``runs`` (NULL where the run has none)."""
    if field.source is Source.COLUMN:
        column: ColumnElement[Any] = getattr(Run, field.key)
        return column
    if field.source is Source.CONFIG:
        return _json_value(Run.config, field.key, field.type, dialect)
    if field.source is Source.SUMMARY:
        return _json_value(Run.summary, field.key, field.type, dialect)
    if field.source is Source.TAG:
        return _json_value(Run.tags, field.key, ValueType.TEXT, dialect)
    if field.source is Source.DATA:
        named = _json_value(Run.config, "data_name", ValueType.TEXT, dialect)
        return func.coalesce(named, _json_value(Run.config, "dataset", ValueType.TEXT, dialect))
    if field.source is Source.VALIDATION:
        metric = getattr(ValidationMetricRow, field.key)
        newest = (
            select(metric)
            .where(ValidationMetricRow.run_id == Run.id)
            .order_by(ValidationMetricRow.step.desc())
            .limit(1)
        )
        return newest.scalar_subquery()
    # The newest evaluation of the split, as everywhere else: highest checkpoint, then newest.
    metric = getattr(EvaluationRow, field.key)
    newest = (
        select(metric)
        .where(EvaluationRow.run_id == Run.id, EvaluationRow.split == field.split)
        .order_by(EvaluationRow.checkpoint_step.desc(), EvaluationRow.id.desc())
        .limit(1)
    )
    return newest.scalar_subquery()


def _json_value(column: Any, key: str, value_type: ValueType, dialect: str) -> ColumnElement[Any]:
    """``column``'s ``key`` when it holds a JSON value of ``value_type``'s kind, else NULL.

    A boolean reads as 1 or 0, so that it compares and sorts alike on both databases.
    """
    element = column[key]  # JSON indexing: the key is a bound parameter
    if dialect == "postgresql":
        kind = func.jsonb_typeof(element)
    else:
        kind = func.json_type(column, f'$."{key}"')  # the path SQLAlchemy itself would bind
    kinds = _JSON_TYPES[dialect]
    if value_type is ValueType.NUMBER:
        return case((kind.in_(kinds["number"]), element.as_float()), else_=None)
    if value_type is ValueType.BOOL:
        # SQLite's json_type says true or false; PostgreSQL's says boolean, ->> says which.
        is_true = kind == "true" if dialect == "sqlite" else element.as_string() == "true"
        return case((kind.in_(kinds["boolean"]), case((is_true, 1), else_=0)), else_=None)
    return case((kind.in_(kinds["text"]), element.as_string()), else_=None)


def _ordered(field: Field, value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Text compared and sorted by code point on both databases."""
    if dialect == "postgresql" and field.type in (ValueType.TEXT, ValueType.STATUS):
        return type_coerce(value, String).collate("C")
    return value


def _comparison(comparison: Comparison, dialect: str, now: datetime) -> ColumnElement[bool]:
    field, op = comparison.field, comparison.op
    value = field_value(field, dialect)
    if op is Operator.IS_NULL:
        return value.is_(None)
    if op is Operator.IS_NOT_NULL:
        return value.is_not(None)
    if op in (Operator.LIKE, Operator.NOT_LIKE):
        text = type_coerce(value, String)
        matched = func.lower(text).like(func.lower(str(comparison.values[0])), escape="\\")
        # NOT LIKE of a missing value is NULL, as every other comparison with one.
        return not_(matched) if op is Operator.NOT_LIKE else matched
    if field.type is ValueType.DATE:
        return _date_comparison(value, op, comparison.values, now)
    if field.type is ValueType.NUMBER:
        value = type_coerce(value, Float) if field.source is not Source.COLUMN else value
    elif field.type is ValueType.BOOL:
        value = type_coerce(value, Integer)
    values = [_plain(item) for item in comparison.values]
    value = _ordered(field, value, dialect) if op.ordering else value
    return _compared(value, op, values)


def _plain(value: Value) -> float | int | str:
    assert not isinstance(value, Moment)
    return int(value) if isinstance(value, bool) else value


def _compared(
    value: ColumnElement[Any], op: Operator, values: Sequence[Any]
) -> ColumnElement[bool]:
    if op is Operator.IN:
        return value.in_(list(values))
    if op is Operator.NOT_IN:
        return value.not_in(list(values))
    operand = values[0]
    compared: dict[Operator, ColumnElement[bool]] = {
        Operator.EQ: value == operand,
        Operator.NE: value != operand,
        Operator.LT: value < operand,
        Operator.LE: value <= operand,
        Operator.GT: value > operand,
        Operator.GE: value >= operand,
    }
    return compared[op]


def _date_comparison(
    value: ColumnElement[Any], op: Operator, values: Sequence[Value], now: datetime
) -> ColumnElement[bool]:
    """Times compared as the column's UTC type binds them; ``= '2026-12-01'`` is that day."""
    moments = [item for item in values if isinstance(item, Moment)]
    value = type_coerce(value, UTCDateTime())
    first = moments[0]
    if first.whole_day and op in (Operator.EQ, Operator.NE):
        start = first.resolve(now)
        within = and_(value >= start, value < start + timedelta(days=1))
        return within if op is Operator.EQ else not_(within)
    return _compared(value, op, [moment.resolve(now) for moment in moments])
