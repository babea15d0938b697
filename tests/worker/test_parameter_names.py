"""One hyperparameter, two names (`lr` and `learning_rate`) accepted everywhere; every unknown
name is answered with the nearest known one."""

from __future__ import annotations

import pytest

from worker.config import parse_train_config
from worker.errors import InvalidConfigError
from worker.sweep_file import parse_sweep_text
from worker.sweep_spec import parse_sweep_spec


@pytest.mark.parametrize("name", ["lr", "learning_rate"])
def test_a_config_takes_the_learning_rate_under_either_name(name: str) -> None:
    assert parse_train_config({name: 0.25}).learning_rate == 0.25


def test_a_config_takes_the_checkpoint_interval_under_its_option_name() -> None:
    config = parse_train_config({"checkpoint_every": 200, "chunk_steps": 100})
    assert config.checkpoint_every_steps == 200


def test_both_names_at_once_are_refused_naming_both() -> None:
    with pytest.raises(InvalidConfigError, match="lr and learning_rate name the same"):
        parse_train_config({"lr": 0.1, "learning_rate": 0.2})


@pytest.mark.parametrize(
    ("typed", "meant"), [("learnig_rate", "learning_rate"), ("batchsize", "batch_size")]
)
def test_an_unknown_config_name_suggests_the_nearest(typed: str, meant: str) -> None:
    with pytest.raises(InvalidConfigError, match=f"{typed}: unknown option; did you mean {meant}"):
        parse_train_config({typed: 1})


@pytest.mark.parametrize("name", ["lr", "learning_rate", "learning-rate"])
def test_a_sweep_file_takes_the_learning_rate_under_either_name(name: str) -> None:
    data = parse_sweep_text(
        f"method: grid\nseed: 1\nparameters: {{{name}: {{values: [0.1, 0.2]}}}}"
    )
    spec = parse_sweep_spec(data)
    assert [(p.name, p.values) for p in spec.parameters] == [("lr", (0.1, 0.2))]


def test_a_sweep_file_with_both_names_is_refused() -> None:
    data = parse_sweep_text("parameters: {lr: {value: 0.1}, learning_rate: {value: 0.2}}")
    with pytest.raises(InvalidConfigError, match="lr and learning_rate name the same"):
        parse_sweep_spec(data)


def test_an_unknown_sweep_parameter_suggests_the_nearest() -> None:
    data = parse_sweep_text("parameters: {learnig_rate: {value: 0.1}}")
    with pytest.raises(InvalidConfigError, match="did you mean learning_rate"):
        parse_sweep_spec(data)


def test_an_unknown_sweep_key_suggests_the_nearest() -> None:
    with pytest.raises(InvalidConfigError, match="paramters: unknown key; did you mean parameters"):
        parse_sweep_spec(parse_sweep_text("paramters: {lr: {value: 0.1}}"))
