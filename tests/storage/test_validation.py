"""One limit per stored value, the same on SQLite and PostgreSQL, checked before anything is stored.

PostgreSQL used to refuse a 201-character name ("value too long", exit 69) that SQLite stored
whole, and ``max_attempts`` 10^12 ("integer out of range"); seeds had two bounds.
"""

from __future__ import annotations

from typing import Any

import pytest

from storage import InvalidValueError, Repository, RunNotFoundError
from storage.validation import (
    MAX_ATTEMPTS_LIMIT,
    MAX_NAME_CHARS,
    MAX_SEED,
    MAX_TAG_VALUE_CHARS,
    MAX_TAGS,
)
from tests.storage.support import new_run
from worker.config import TrainConfig


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "n" * (MAX_NAME_CHARS + 1)}, "name must be at most 200 characters"),
        ({"name": "n" * 5000}, "name must be at most 200 characters"),
        ({"max_attempts": 10**12}, "max_attempts 1000000000000 must be a whole number from 1"),
        ({"max_attempts": MAX_ATTEMPTS_LIMIT + 1}, "max_attempts"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"seed": MAX_SEED + 1}, "seed 2147483648 must be a whole number from 0 to 2147483647"),
        ({"seed": -1}, "seed"),
        ({"tags": {"k": "v" * (MAX_TAG_VALUE_CHARS + 1)}}, "tag 'k'"),
        ({"tags": {"k" * 65: "v"}}, "tag key"),
        ({"tags": {f"k{i}": "v" for i in range(MAX_TAGS + 1)}}, "at most 64"),
    ],
)
def test_a_value_over_its_limit_is_refused_on_every_backend_and_nothing_is_stored(
    repo: Repository, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        new_run(repo, **overrides)
    assert repo.list_runs() == []


def test_values_at_their_limits_are_stored_whole_on_every_backend(repo: Repository) -> None:
    name = "n" * MAX_NAME_CHARS
    tags = {f"k{i}": "v" * MAX_TAG_VALUE_CHARS for i in range(MAX_TAGS)}
    run = new_run(repo, name=name, seed=MAX_SEED, max_attempts=MAX_ATTEMPTS_LIMIT, tags=tags)
    stored = repo.get_run(run.id)
    assert (stored.name, stored.seed, stored.max_attempts) == (name, MAX_SEED, MAX_ATTEMPTS_LIMIT)
    assert stored.tags == tags


def test_the_job_config_and_the_repository_share_one_seed_bound() -> None:
    TrainConfig(seed=MAX_SEED)
    with pytest.raises(ValueError, match="less than or equal to 2147483647"):
        TrainConfig(seed=MAX_SEED + 1)


@pytest.mark.parametrize("run_id", [0, -1, 2**31, 2**64, 10**30])
def test_a_run_id_no_row_can_have_is_simply_not_found_on_every_backend(
    repo: Repository, run_id: int
) -> None:
    with pytest.raises(RunNotFoundError):
        repo.get_run(run_id)
