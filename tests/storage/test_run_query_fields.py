"""The query language's names follow the worker's: storage cannot import the worker, so its
list of hyperparameters, aliases, splits and summary keys is held equal to theirs here."""

from __future__ import annotations

import dataclasses
import enum
import typing

import pytest

from storage.records import TrainSummary
from storage.run_query_fields import (
    CONFIG_FIELDS_AS_COLUMNS,
    CONFIG_FIELDS_NOT_QUERIED,
    HYPERPARAMETER_ALIASES,
    HYPERPARAMETERS,
    SPLITS,
    SUMMARY_KEYS,
    Source,
    UnknownNameError,
    ValueType,
    known_names,
    resolve_field,
)
from worker.choices import Split
from worker.config import TrainConfig
from worker.parameter_names import FIELD_FOR_OPTION


def value_type(annotation: object) -> ValueType:
    """The query type of a config field's annotation (``Annotated[float, ...] | None`` too)."""
    kinds = {arg for arg in typing.get_args(annotation) if arg is not type(None)} or {annotation}
    (kind,) = {
        typing.get_args(k)[0] if typing.get_origin(k) is typing.Annotated else k for k in kinds
    }
    if kind is bool:
        return ValueType.BOOL
    if kind in (int, float):
        return ValueType.NUMBER
    assert kind is str or (isinstance(kind, type) and issubclass(kind, enum.Enum)), kind
    return ValueType.TEXT


def test_every_hyperparameter_is_a_name_with_its_type() -> None:
    fields = TrainConfig.model_fields
    named = set(HYPERPARAMETERS) | CONFIG_FIELDS_AS_COLUMNS | CONFIG_FIELDS_NOT_QUERIED
    assert named == set(fields)
    for name, declared in HYPERPARAMETERS.items():
        assert value_type(fields[name].annotation) is declared, name


def test_the_aliases_are_the_worker_s() -> None:
    assert HYPERPARAMETER_ALIASES == FIELD_FOR_OPTION


def test_the_splits_are_the_worker_s() -> None:
    assert set(SPLITS) == {split.value for split in Split}


def test_the_summary_keys_are_train_summary_fields() -> None:
    fields = {field.name: field for field in dataclasses.fields(TrainSummary)}
    assert set(SUMMARY_KEYS) <= set(fields)


def test_every_known_name_resolves() -> None:
    for name in known_names():
        assert resolve_field(name).name


@pytest.mark.parametrize("name", ["tags.", "tags.a b", "params.nope", "metrics.lr", "eval.x.loss"])
def test_names_that_are_not_known(name: str) -> None:
    with pytest.raises(UnknownNameError):
        resolve_field(name)


def test_a_config_field_kept_as_a_column_reads_the_column() -> None:
    assert resolve_field("seed").source is Source.COLUMN
