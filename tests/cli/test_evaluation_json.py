"""One evaluation has one JSON shape: `trainq runs show`, `trainq eval`/`evals show` and the
dashboard's run page all build it with ``api_cli.evaluation_json.evaluation_dict``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api_cli.dashboard.views import run_page
from api_cli.evaluation_json import evaluation_dict
from api_cli.evaluation_view import evaluation_detail_dict
from api_cli.views import run_detail_dict
from storage import Database, EvaluationRecord, Repository, Settings
from tests.cli.conftest import embedded_env
from tests.cli.seeding import succeeded_run
from worker.data import CLASS_NAMES


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    database = Database(Settings.from_env(embedded_env(tmp_path)).database_url)
    database.ensure_schema(auto_upgrade=True)
    return Repository(database)


@pytest.fixture
def evaluation(repository: Repository) -> EvaluationRecord:
    """A 3-class evaluation whose last class had no examples (NaN accuracy)."""
    run = succeeded_run(repository)
    return repository.save_evaluation(
        run_id=run.id,
        checkpoint_step=1000,
        split="test",
        loss=0.5,
        accuracy=0.75,
        per_class_accuracy=[0.8, 0.7, None],
        confusion=[[8, 2, 0], [3, 7, 0], [0, 0, 0]],
    )


def test_the_dashboard_and_every_command_show_an_evaluation_in_the_same_shape(
    repository: Repository, evaluation: EvaluationRecord
) -> None:
    shape = evaluation_dict(evaluation)
    run = repository.get_run(evaluation.run_id)
    page = run_page(repository, run.id, datetime.now(UTC))
    assert page["evaluations"] == [shape]
    assert run_detail_dict(run, [evaluation], [])["evaluations"] == [shape]
    assert evaluation_detail_dict(evaluation, stored=True) == {**shape, "stored": True}


def test_an_evaluation_names_its_classes_and_the_class_each_is_mistaken_for(
    evaluation: EvaluationRecord,
) -> None:
    shape = evaluation_dict(evaluation)
    assert shape["class_names"] == list(CLASS_NAMES[:3])
    first, second, empty = shape["per_class"]
    assert (first["name"], first["examples"], first["most_confused_with"]) == (
        CLASS_NAMES[0],
        10,
        CLASS_NAMES[1],
    )
    assert (second["confusions"], second["most_confused_with"]) == (3, CLASS_NAMES[0])
    assert (empty["accuracy"], empty["most_confused_with"]) == (None, None)


def test_an_evaluation_keeps_the_documented_cli_keys_and_is_plain_json(
    evaluation: EvaluationRecord,
) -> None:
    shape = evaluation_dict(evaluation)
    cli_keys = ["id", "run_id", "checkpoint_step", "split", "loss", "accuracy"]
    cli_keys += ["per_class_accuracy", "confusion", "job_id", "created_at"]
    assert list(shape)[: len(cli_keys)] == cli_keys
    assert math.isnan(shape["per_class_accuracy"][2])  # as stored; per_class says None
    assert json.loads(json.dumps(shape["per_class"]))[2]["accuracy"] is None
