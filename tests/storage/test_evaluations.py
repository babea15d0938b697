"""Evaluations: stored once per eval job, fenced on the job's attempt, NaN kept."""

from __future__ import annotations

import math
from typing import Any

import pytest

from storage import (
    Database,
    InvalidValueError,
    Repository,
    RunNotFoundError,
    StaleAttemptError,
)
from tests.storage.support import (
    LEASE_TTL_S,
    FakeClock,
    claim_eval,
    count_rows,
    new_eval_job,
    new_run,
)

CONFUSION = [[100 if row == column else 0 for column in range(10)] for row in range(10)]


def results(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "checkpoint_step": 100,
        "split": "test",
        "loss": 0.45,
        "accuracy": 0.84,
        "per_class_accuracy": [0.8 + i / 100 for i in range(10)],
        "confusion": CONFUSION,
    }
    values.update(overrides)
    return values


def eval_job(repo: Repository, run_id: int) -> int:
    return claim_eval(repo, new_eval_job(repo, run_id).id).id


def test_an_evaluation_is_stored_and_listed_with_its_run(
    repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo)
    saved = repo.save_evaluation(run_id=run.id, **results())

    assert saved.run_id == run.id
    assert (saved.checkpoint_step, saved.split) == (100, "test")
    assert (saved.loss, saved.accuracy) == (0.45, 0.84)
    assert saved.per_class_accuracy == [0.8 + i / 100 for i in range(10)]
    assert saved.confusion == CONFUSION
    assert saved.job_id is None
    assert saved.created_at == clock.now
    assert repo.list_evaluations(run.id) == [saved]


def test_evaluations_are_listed_by_checkpoint_step(repo: Repository) -> None:
    run = new_run(repo)
    later = repo.save_evaluation(run_id=run.id, **results(checkpoint_step=200))
    earlier = repo.save_evaluation(run_id=run.id, **results(checkpoint_step=100))
    assert repo.list_evaluations(run.id) == [earlier, later]


def test_an_eval_job_saving_twice_stores_one_evaluation(db: Database, repo: Repository) -> None:
    run = new_run(repo)
    job_id = eval_job(repo, run.id)

    first = repo.save_evaluation(run_id=run.id, job_id=job_id, job_attempt=1, **results())
    second = repo.save_evaluation(run_id=run.id, job_id=job_id, job_attempt=1, **results(loss=9.9))

    assert second == first
    assert count_rows(db, "evaluations", run.id) == 1
    assert repo.get_evaluation_for_job(job_id) == first


def test_a_redelivered_eval_job_at_a_new_attempt_gets_the_existing_evaluation(
    db: Database, repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo)
    job_id = eval_job(repo, run.id)
    first = repo.save_evaluation(run_id=run.id, job_id=job_id, job_attempt=1, **results())
    clock.advance(LEASE_TTL_S + 1)
    claim_eval(repo, job_id, owner="w2")

    again = repo.save_evaluation(run_id=run.id, job_id=job_id, job_attempt=2, **results())

    assert again == first
    assert count_rows(db, "evaluations", run.id) == 1


def test_a_stale_eval_job_attempt_cannot_save(
    db: Database, repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo)
    job_id = eval_job(repo, run.id)
    clock.advance(LEASE_TTL_S + 1)
    claim_eval(repo, job_id, owner="w2")

    with pytest.raises(StaleAttemptError):
        repo.save_evaluation(run_id=run.id, job_id=job_id, job_attempt=1, **results())
    assert count_rows(db, "evaluations", run.id) == 0
    assert repo.get_evaluation_for_job(job_id) is None


def test_nan_results_round_trip_as_nan(repo: Repository) -> None:
    run = new_run(repo)
    per_class: list[float | None] = [math.nan, None] + [0.5] * 8  # None: a class without examples
    saved = repo.save_evaluation(
        run_id=run.id, **results(loss=math.nan, accuracy=0.1, per_class_accuracy=per_class)
    )
    stored = repo.list_evaluations(run.id)[0]
    for record in (saved, stored):
        assert math.isnan(record.loss)
        assert record.accuracy == 0.1
        assert math.isnan(record.per_class_accuracy[0])
        assert math.isnan(record.per_class_accuracy[1])
        assert record.per_class_accuracy[2:] == [0.5] * 8


def test_an_infinite_loss_is_kept(repo: Repository) -> None:
    run = new_run(repo)
    repo.save_evaluation(run_id=run.id, **results(loss=math.inf))
    assert repo.list_evaluations(run.id)[0].loss == math.inf


def test_save_evaluation_refuses_bad_input(repo: Repository) -> None:
    run = new_run(repo)
    with pytest.raises(InvalidValueError, match="job_attempt"):
        repo.save_evaluation(run_id=run.id, job_id=run.id, **results())
    with pytest.raises(InvalidValueError, match="square"):
        repo.save_evaluation(run_id=run.id, **results(confusion=[[1, 2], [3]]))
    with pytest.raises(RunNotFoundError):
        repo.save_evaluation(run_id=run.id + 100, **results())
    with pytest.raises(RunNotFoundError):
        repo.list_evaluations(run.id + 100)
