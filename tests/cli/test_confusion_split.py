"""`trainq plot RUN --confusion` shows the test split unless told otherwise, and never suggests
a command that would fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Database, Repository, Settings
from tests.cli.conftest import Trainq, embedded_env
from tests.cli.seeding import succeeded_run

CLASSES = 10


@pytest.fixture(scope="module")
def repository(home: Path) -> Repository:
    database = Database(Settings.from_env(embedded_env(home)).database_url)
    database.ensure_schema(auto_upgrade=True)
    return Repository(database)


def evaluate(repository: Repository, run_id: int, split: str, accuracy: float) -> None:
    confusion = [
        [10 if row == column else 0 for column in range(CLASSES)] for row in range(CLASSES)
    ]
    repository.save_evaluation(
        run_id=run_id,
        checkpoint_step=1000,
        split=split,
        loss=0.5,
        accuracy=accuracy,
        per_class_accuracy=[1.0] * CLASSES,
        confusion=confusion,
    )


def test_the_test_split_is_shown_even_when_another_split_was_evaluated_later(
    trainq: Trainq, repository: Repository
) -> None:
    run = succeeded_run(repository)
    evaluate(repository, run.id, "test", 0.8125)
    evaluate(repository, run.id, "train", 0.9375)  # the newest
    result = trainq("plot", str(run.id), "--confusion")
    assert result.returncode == 0, result.stderr
    assert "test split" in result.stdout and "accuracy 0.8125" in result.stdout
    train = trainq("plot", str(run.id), "--confusion", "--split", "train")
    assert "accuracy 0.9375" in train.stdout


def test_without_a_test_evaluation_the_newest_is_shown_and_said(
    trainq: Trainq, repository: Repository
) -> None:
    run = succeeded_run(repository)
    evaluate(repository, run.id, "train", 0.75)
    result = trainq("plot", str(run.id), "--confusion")
    assert result.returncode == 0, result.stderr
    assert "accuracy 0.7500" in result.stdout
    assert "no test evaluation" in result.stderr and f"`trainq eval {run.id}`" in result.stderr


def test_a_run_without_validation_images_is_never_told_to_evaluate_them(
    trainq: Trainq, repository: Repository
) -> None:
    run = succeeded_run(repository)  # val_size 0
    result = trainq("plot", str(run.id), "--confusion", "--split", "val")
    assert result.returncode == 2
    assert "--split val" not in result.stderr.partition(";")[2]
    assert "no validation images" in result.stderr and f"`trainq eval {run.id}`" in result.stderr
    missing = trainq("plot", str(run.id), "--confusion")
    assert missing.returncode == 4 and f"`trainq eval {run.id}`" in missing.stderr
