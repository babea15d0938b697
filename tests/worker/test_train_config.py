"""Validating a training job's config: every bad value is refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from worker.config import TrainConfig, parse_train_config
from worker.errors import InvalidConfigError


def refused(**fields: Any) -> str:
    with pytest.raises(InvalidConfigError) as caught:
        parse_train_config(fields)
    return str(caught.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 0.0, -0.01, 1e9])
def test_a_learning_rate_that_is_not_a_positive_finite_number_is_refused(value: float) -> None:
    assert "learning_rate" in refused(learning_rate=value)


@pytest.mark.parametrize("value", [0, -1, 60_001])
def test_a_batch_size_outside_1_to_60000_is_refused(value: int) -> None:
    message = refused(batch_size=value)
    assert "batch_size" in message
    assert repr(value) in message


@pytest.mark.parametrize("value", [0, -1, 10_000_001])
def test_a_step_count_outside_1_to_10_million_is_refused(value: int) -> None:
    assert "steps" in refused(steps=value)


def test_an_unknown_option_is_refused_by_name() -> None:
    assert "learning_rat: unknown option" in refused(learning_rat=0.1)


def test_every_offending_field_is_named_at_once() -> None:
    message = refused(learning_rate=float("nan"), batch_size=0, momentum=1.0)
    for field in ("learning_rate", "batch_size", "momentum"):
        assert field in message


def test_checkpoints_must_fall_on_chunk_ends_and_the_message_says_what_would() -> None:
    message = refused(chunk_steps=300, checkpoint_every_steps=1000)
    assert "checkpoint_every_steps 1000 must be a multiple of chunk_steps 300" in message
    assert "try checkpoint_every_steps 900 or 1200" in message


@pytest.mark.parametrize(
    ("given", "fitted"),
    [
        ({"checkpoint_every_steps": 100}, (100, 100)),
        ({"checkpoint_every_steps": 1500}, (1500, 500)),
        ({"checkpoint_every_steps": 997}, (997, 1)),
        ({"chunk_steps": 300}, (900, 300)),
        ({"chunk_steps": 5000}, (5000, 5000)),
        ({"checkpoint_every_steps": None, "chunk_steps": None}, (1000, 500)),
    ],
)
def test_any_checkpoint_interval_works_when_the_chunk_is_left_to_fit_it(
    given: dict[str, int | None], fitted: tuple[int, int]
) -> None:
    config = parse_train_config(given)
    assert (config.checkpoint_every_steps, config.chunk_steps) == fitted


def test_messages_use_plain_words_not_the_validation_librarys() -> None:
    message = refused(learning_rate=-1.0, batch_size="many", steps=0)
    assert "learning_rate: must be > 0" in message and "steps: must be >= 1" in message
    assert "batch_size: must be a whole number" in message
    for library_wording in ("Value error", "Input should be", "config: config:"):
        assert library_wording not in message


def test_the_defaults_are_the_notebooks_job() -> None:
    config = parse_train_config({})
    assert (config.learning_rate, config.batch_size, config.steps) == (0.01, 128, 10_000)
    assert config.resolved().seed is not None


def test_an_unresolved_seed_cannot_be_trained_with() -> None:
    with pytest.raises(InvalidConfigError, match="seed"):
        _ = TrainConfig().seed_value
