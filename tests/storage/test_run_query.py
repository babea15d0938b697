"""The run query language's parser: every operator, names resolved, literals typed, and each
mistake reported at its column. No database here (``test_run_search.py`` runs the queries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import QuerySyntaxError, parse_run_query, parse_run_sort
from storage.run_query import AllOf, AnyOf, Comparison, Moment, Negation, Operator
from storage.run_query_fields import Source, ValueType


def only(text: str) -> Comparison:
    """The single comparison ``text`` parses to."""
    where = parse_run_query(text).where
    assert isinstance(where, Comparison)
    return where


@pytest.mark.parametrize(
    ("text", "op", "values"),
    [
        ("lr = 0.1", Operator.EQ, (0.1,)),
        ("lr == 0.1", Operator.EQ, (0.1,)),
        ("lr != 0.1", Operator.NE, (0.1,)),
        ("lr <> 0.1", Operator.NE, (0.1,)),
        ("lr < 0.1", Operator.LT, (0.1,)),
        ("lr <= .5", Operator.LE, (0.5,)),
        ("lr > 1e-3", Operator.GT, (0.001,)),
        ("lr >= -2", Operator.GE, (-2,)),
        ("name like 'base%'", Operator.LIKE, ("base%",)),
        ("name NOT LIKE 'base%'", Operator.NOT_LIKE, ("base%",)),
        ("batch_size in (64, 128)", Operator.IN, (64, 128)),
        ("batch_size not in (64)", Operator.NOT_IN, (64,)),
        ("test_accuracy is null", Operator.IS_NULL, ()),
        ("test_accuracy IS NOT NULL", Operator.IS_NOT_NULL, ()),
        ("xla = true", Operator.EQ, (True,)),
        ("xla != FALSE", Operator.NE, (False,)),
    ],
)
def test_every_operator_parses(text: str, op: Operator, values: tuple[object, ...]) -> None:
    comparison = only(text)
    assert (comparison.op, comparison.values) == (op, values)


def test_and_binds_tighter_than_or_and_parentheses_and_not_group() -> None:
    where = parse_run_query("lr < 0.1 or momentum > 0 and not (name = 'a' or name = 'b')").where
    assert isinstance(where, AnyOf)
    first, second = where.items
    assert isinstance(first, Comparison) and first.field.name == "learning_rate"
    assert isinstance(second, AllOf)
    negated = second.items[1]
    assert isinstance(negated, Negation) and isinstance(negated.item, AnyOf)


def test_an_empty_query_matches_everything() -> None:
    assert parse_run_query("").where is None
    assert parse_run_query("   ").where is None


@pytest.mark.parametrize(
    ("name", "canonical", "source", "key"),
    [
        ("lr", "learning_rate", Source.CONFIG, "learning_rate"),
        ("learning_rate", "learning_rate", Source.CONFIG, "learning_rate"),
        ("params.lr", "learning_rate", Source.CONFIG, "learning_rate"),
        ("checkpoint_every", "checkpoint_every_steps", Source.CONFIG, "checkpoint_every_steps"),
        ("accuracy", "final_accuracy", Source.SUMMARY, "final_accuracy"),
        ("metrics.loss", "final_loss", Source.SUMMARY, "final_loss"),
        ("wall", "wall_s", Source.SUMMARY, "wall_s"),
        ("val_accuracy", "val_accuracy", Source.VALIDATION, "accuracy"),
        ("test_accuracy", "eval.test.accuracy", Source.EVALUATION, "accuracy"),
        ("eval.val.loss", "eval.val.loss", Source.EVALUATION, "loss"),
        ("tags.team", "tags.team", Source.TAG, "team"),
        ("tag.my-key.v2", "tags.my-key.v2", Source.TAG, "my-key.v2"),
        ("created_at", "created", Source.COLUMN, "created_at"),
        ("sweep", "sweep", Source.COLUMN, "sweep_id"),
        ("seed", "seed", Source.COLUMN, "seed"),
        ("params.seed", "seed", Source.COLUMN, "seed"),
        ("attributes.status", "status", Source.COLUMN, "status"),
        ("data", "data", Source.DATA, "data_name"),
    ],
)
def test_names_resolve_with_their_aliases_and_prefixes(
    name: str, canonical: str, source: Source, key: str
) -> None:
    field = only(f"{name} is null").field
    assert (field.name, field.source, field.key) == (canonical, source, key)


def test_dates_take_iso_times_days_and_times_ago() -> None:
    day = only("created = '2026-12-01'").values[0]
    assert day == Moment(at=datetime(2026, 12, 1, tzinfo=UTC), whole_day=True)
    moment = only("finished < '2026-12-01T13:30:00+01:00'").values[0]
    assert moment == Moment(at=datetime(2026, 12, 1, 12, 30, tzinfo=UTC))
    ago = only("started > -36h").values[0]
    assert isinstance(ago, Moment) and ago.ago == timedelta(hours=36)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert ago.resolve(now) == now - timedelta(hours=36)
    assert only("created > -2w").values[0] == Moment(ago=timedelta(weeks=2))


def test_strings_take_either_quote_and_a_doubled_one_inside() -> None:
    assert only("name = 'it''s'").values == ("it's",)
    assert only('name = "say ""hi"""').values == ('say "hi"',)


def test_a_number_compared_with_text_is_the_text_typed() -> None:
    comparison = only("tags.epochs in (3, 10)")
    assert comparison.field.type is ValueType.TEXT and comparison.values == ("3", "10")


def test_sort_keys_with_direction() -> None:
    keys = parse_run_sort("-val_accuracy, name,lr")
    assert [(key.field.name, key.descending) for key in keys] == [
        ("val_accuracy", True),
        ("name", False),
        ("learning_rate", False),
    ]


def error_of(text: str, *, sort: bool = False) -> QuerySyntaxError:
    parse = parse_run_sort if sort else parse_run_query
    with pytest.raises(QuerySyntaxError) as raised:
        parse(text)
    assert raised.value.text == text
    return raised.value


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("lr <", 5, "ends too early: expected a value"),
        ("lr 0.1", 4, "expected an operator"),
        ("lr = 'abc", 6, "this string never ends"),
        ("(lr = 1", 8, "expected ')'"),
        ("lr = 1 and", 11, "expected a name"),
        ("lr = 1 && momentum = 0", 8, "write and"),
        ("lr = 1 || momentum = 0", 8, "write or"),
        ("= 3", 1, "expected a name"),
        ("lr = 1 momentum = 0", 8, "expected and, or or the end of the query"),
        ("batch_size in (1, )", 19, "expected a value"),
        ("val_acc > 0.8", 1, "did you mean val_accuracy"),
        ("momentum > 0 and learnig_rate < 1", 18, "did you mean learning_rate"),
        ("lr > '0.1'", 6, "lr is a number"),
        ("status = 'done'", 10, "a status is one of queued, running, succeeded"),
        ("tags.x > 3", 10, "tags.x is text: quote the value"),
        ("created > 'yesterday'", 11, "not a date"),
        ("created > 3", 11, "created is a date"),
        ("xla > true", 7, "xla is true or false"),
        ("lr like '0.1%'", 9, "like compares text"),
        ("name like 'a\\'", 11, "lone \\"),
        ("lr = 1e999", 6, "too large"),
        ("created = '9999-12-31'", 11, "within the years 1-9999"),
        ("created > -400000d", 11, "too long ago"),
        ("tags.bad key = 'x'", 10, "expected an operator"),
        ("nonsense = 1", 1, "docs/queries.md"),
    ],
)
def test_mistakes_are_reported_at_their_column(text: str, column: int, words: str) -> None:
    error = error_of(text)
    assert words in error.message
    assert error.column == column
    assert str(error).endswith(f"(column {column})")


def test_the_pointer_puts_a_caret_under_the_mistake() -> None:
    error = error_of("lr < 0.1 and\tval_acc > 0.8")
    assert error.pointer() == "  lr < 0.1 and val_acc > 0.8\n               ^"


def test_sort_mistakes_have_columns_too() -> None:
    assert error_of("name, -val_acc", sort=True).column == 8
    assert "expected a name" in error_of("-", sort=True).message


def test_a_query_is_never_evaluated_as_python() -> None:
    error = error_of("__import__('os').system('true')")
    assert error.column == 11
