"""`trainq eval` and `trainq evals`: stored results reused, results for people, jobs apart."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.cli.conftest import Trainq
from worker.data import CLASS_NAMES

SMALL = ("--steps", "200", "--chunk-steps", "100", "--checkpoint-every", "100")


@pytest.fixture(scope="module")
def two_runs(trainq: Trainq) -> list[int]:
    """Two small training runs that differ in their learning rate only, each evaluated once."""
    ids = []
    for rate in ("0.5", "0.001"):
        trained = trainq("train", *SMALL, "--lr", rate, "--seed", "3", "--json")
        assert trained.returncode == 0, trained.stderr
        ids.append(json.loads(trained.stdout)["id"])
        evaluated = trainq("eval", str(ids[-1]), "--json")
        assert evaluated.returncode == 0, evaluated.stderr
    return ids


def _eval_json(trainq: Trainq, *args: str) -> dict[str, object]:
    result = trainq("eval", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.mark.slow
def test_a_second_eval_of_the_same_checkpoint_returns_the_stored_result(
    trainq: Trainq, two_runs: list[int]
) -> None:
    before = json.loads(trainq("status", "--json").stdout)["database"]
    again = _eval_json(trainq, str(two_runs[0]))
    after = json.loads(trainq("status", "--json").stdout)["database"]
    assert again["evaluation_job_ids"] == []
    [evaluation] = again["evaluations"]  # type: ignore[misc]
    assert evaluation["stored"] is True and evaluation["checkpoint_step"] == 200
    assert after["evaluation_jobs_by_status"] == before["evaluation_jobs_by_status"]
    said = trainq("eval", str(two_runs[0]))
    assert "stored result" in said.stderr and "--force evaluates again" in said.stderr
    assert f"evaluation {evaluation['id']}" in said.stdout


@pytest.mark.slow
def test_force_evaluates_the_stored_checkpoint_again(trainq: Trainq, two_runs: list[int]) -> None:
    stored = _eval_json(trainq, str(two_runs[1]))["evaluations"][0]  # type: ignore[index]
    forced = _eval_json(trainq, str(two_runs[1]), "--force")
    [job_id] = forced["evaluation_job_ids"]  # type: ignore[misc]
    [fresh] = forced["evaluations"]  # type: ignore[misc]
    assert fresh["stored"] is False and fresh["id"] != stored["id"]
    assert fresh["job_id"] == job_id
    assert fresh["accuracy"] == stored["accuracy"]  # same weights, same images, same numbers


@pytest.mark.slow
def test_the_eval_table_names_every_class_and_labels_the_confusion_matrix(
    trainq: Trainq, two_runs: list[int]
) -> None:
    shown = trainq("eval", str(two_runs[0]))
    assert shown.returncode == 0, shown.stderr
    assert "loss" in shown.stdout and "accuracy" in shown.stdout
    assert "per-class accuracy" in shown.stdout and "confusion matrix" in shown.stdout
    for index, name in enumerate(CLASS_NAMES):
        assert f"{index} {name}" in shown.stdout  # a confusion row, labelled
    widest = max(len(line) for line in shown.stdout.splitlines())
    assert widest <= 80


@pytest.mark.slow
def test_eval_csv_has_one_line_per_evaluation_and_no_python_reprs(
    trainq: Trainq, two_runs: list[int]
) -> None:
    result = trainq("eval", str(two_runs[0]), "--checkpoint", "all", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["checkpoint_step"] for row in rows] == ["100", "200"]
    assert [row["stored"] for row in rows] == ["false", "true"]
    assert "None" not in result.stdout and "True" not in result.stdout


@pytest.mark.slow
def test_evals_list_sorts_by_accuracy_and_shows_the_hyperparameters_that_differ(
    trainq: Trainq, two_runs: list[int]
) -> None:
    args = ("evals", "list", "--sort", "accuracy", "--split", "test")
    listed = json.loads(trainq(*args, "--format", "json").stdout)
    accuracies = [row["accuracy"] for row in listed]
    assert accuracies == sorted(accuracies, reverse=True)
    assert {row["run_id"] for row in listed} == set(two_runs)
    assert {tuple(row["differing_hyperparameters"]) for row in listed} == {("learning_rate",)}
    table = trainq(*args).stdout
    assert "learning_rate=0.5" in table and "learning_rate=0.001" in table
    header = next(csv.reader(io.StringIO(trainq(*args, "--format", "csv").stdout)))
    assert header == list(listed[0])  # CSV columns are the JSON keys


@pytest.mark.slow
def test_evals_show_prints_one_evaluation_by_class_name(
    trainq: Trainq, two_runs: list[int]
) -> None:
    [newest] = json.loads(trainq("evals", "list", "--limit", "1", "--json").stdout)
    shown = json.loads(trainq("evals", "show", str(newest["id"]), "--json").stdout)
    assert shown["class_names"] == list(CLASS_NAMES)
    assert [row["name"] for row in shown["per_class"]] == list(CLASS_NAMES)
    missing = trainq("evals", "show", "999999")
    assert missing.returncode == 4 and "trainq evals list" in missing.stderr


@pytest.mark.slow
def test_status_counts_training_runs_and_evaluation_jobs_apart(
    trainq: Trainq, two_runs: list[int]
) -> None:
    database = json.loads(trainq("status", "--json").stdout)["database"]
    runs = json.loads(trainq("runs", "list", "--format", "json").stdout)
    jobs = json.loads(trainq("runs", "list", "--evals", "--format", "json").stdout)
    assert sum(database["runs_by_status"].values()) == len(runs)
    assert sum(database["evaluation_jobs_by_status"].values()) == len(jobs)
    assert {run["id"] for run in runs} >= set(two_runs)


@pytest.mark.slow
def test_training_run_ids_do_not_jump_because_evaluations_were_queued(
    trainq: Trainq, two_runs: list[int]
) -> None:
    trainq("eval", str(two_runs[1]), "--checkpoint", "100", "--force")
    trained = trainq("train", *SMALL, "--json")
    assert json.loads(trained.stdout)["id"] == max(two_runs) + 1


@pytest.mark.slow
def test_embedded_eval_says_it_evaluated_rather_than_queued(
    trainq: Trainq, two_runs: list[int]
) -> None:
    said = trainq("eval", str(two_runs[0]), "--checkpoint", "100", "--force")
    assert said.returncode == 0, said.stderr
    assert "evaluating 1 checkpoint" in said.stderr and "queued" not in said.stderr


@pytest.mark.slow
def test_every_checkpoint_gets_its_own_evaluation_equal_to_the_one_evaluated_alone(
    trainq: Trainq, two_runs: list[int]
) -> None:
    def evaluations(*args: str) -> list[dict[str, Any]]:
        shown = _eval_json(trainq, *args)
        assert shown.get("failed", []) == []
        found: list[dict[str, Any]] = shown["evaluations"]  # type: ignore[assignment]
        assert sorted(e["job_id"] for e in found if not e["stored"]) == sorted(
            shown["evaluation_job_ids"]  # type: ignore[type-var]
        )
        return found

    # Stored by the fixture, each checkpoint in a job of its own; below they share one pass.
    alone = [evaluations(str(run_id))[0] for run_id in two_runs]

    one_run = evaluations(str(two_runs[0]), "--checkpoint", "all", "--force")
    every_run = evaluations("--all", "--checkpoint", "all", "--force")

    assert [(e["run_id"], e["checkpoint_step"]) for e in one_run] == [
        (two_runs[0], 100),
        (two_runs[0], 200),
    ]
    pairs = [(e["run_id"], e["checkpoint_step"]) for e in every_run]
    assert len(set(pairs)) == len(pairs) >= 4
    assert {(run_id, step) for run_id in two_runs for step in (100, 200)} <= set(pairs)
    assert not any(e["stored"] for e in [*one_run, *every_run])
    for reference in alone:
        key = (reference["run_id"], 200)
        (packed,) = [e for e in every_run if (e["run_id"], e["checkpoint_step"]) == key]
        assert packed["accuracy"] == reference["accuracy"]
        assert packed["confusion"] == reference["confusion"]
        assert packed["loss"] == pytest.approx(reference["loss"], rel=1e-6)
