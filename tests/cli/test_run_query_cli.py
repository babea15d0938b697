"""``trainq runs list --where/--sort/--offset``: the query language from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import Database, Repository, Settings
from tests.cli.conftest import Trainq, embedded_env
from tests.cli.seeding import queued_run, succeeded_run


@pytest.fixture(scope="module")
def four_runs(home: Path) -> None:
    """Runs 1-3 succeeded with lr 0.01, 0.05, 0.2 (run 2 tagged team=nlp); run 4 queued."""
    settings = Settings.from_env(embedded_env(home))
    database = Database(settings.database_url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    succeeded_run(repository, learning_rate=0.01, name="baseline")
    succeeded_run(repository, learning_rate=0.05, name="momentum", tags={"team": "nlp"})
    succeeded_run(repository, learning_rate=0.2, name="wide")
    queued_run(repository, learning_rate=0.001)
    database.dispose(close=True)


def json_ids(trainq: Trainq, *options: str) -> list[int]:
    result = trainq("runs", "list", "--json", *options)
    assert result.returncode == 0, result.stderr
    return [run["id"] for run in json.loads(result.stdout)]


def test_where_selects_and_sort_orders(trainq: Trainq, four_runs: None) -> None:
    assert json_ids(trainq, "--where", "lr < 0.1 and status = 'succeeded'") == [2, 1]
    assert json_ids(trainq, "--where", "lr < 0.1", "--sort", "lr") == [4, 1, 2]
    assert json_ids(trainq, "--where", "name like 'BASE%' or tags.team = 'nlp'") == [2, 1]


def test_the_other_filters_combine_with_where(trainq: Trainq, four_runs: None) -> None:
    assert json_ids(trainq, "--where", "lr < 0.1", "--status", "queued") == [4]
    assert json_ids(trainq, "--where", "lr < 0.1", "--tag", "team=nlp") == [2]


def test_pages_say_how_many_match(trainq: Trainq, four_runs: None) -> None:
    first = trainq("runs", "list", "--sort", "-lr", "--limit", "2")
    assert first.returncode == 0, first.stderr
    assert "showing 2 of 4 (--offset 2 for the next" in first.stderr
    last = trainq("runs", "list", "--sort", "-lr", "--limit", "2", "--offset", "2")
    assert "showing 3-4 of 4" in last.stderr
    assert json_ids(trainq, "--sort", "-lr", "--limit", "2", "--offset", "2") == [1, 4]
    scripted = trainq("runs", "list", "--sort", "-lr", "--limit", "2", "--format", "json")
    assert len(json.loads(scripted.stdout)) == 2  # stdout stays a plain list for scripts
    assert "showing 2 of 4 (--offset 2 for the next" in scripted.stderr
    past = trainq("runs", "list", "--offset", "9")
    assert past.returncode == 0 and "no runs past --offset 9: 4 match" in past.stdout


def test_a_mistake_shows_a_caret_under_it_and_exits_2(trainq: Trainq, four_runs: None) -> None:
    result = trainq("runs", "list", "--where", "lr < 0.1 and val_acc > 0.8")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: --where: unknown name 'val_acc'; did you mean val_accuracy? (column 14)"
    )
    assert lines[1:3] == ["  lr < 0.1 and val_acc > 0.8", "               ^"]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_syntax_error_in_where_or_sort_names_the_option(trainq: Trainq, four_runs: None) -> None:
    unfinished = trainq("runs", "list", "--where", "lr <")
    assert unfinished.returncode == 2
    assert "error: --where: the query ends too early: expected a value" in unfinished.stderr
    assert "      ^" in unfinished.stderr.splitlines()
    sort = trainq("runs", "list", "--sort", "-lr,nmae")
    assert sort.returncode == 2
    assert "error: --sort: unknown name 'nmae'; did you mean name? (column 5)" in sort.stderr


def test_where_lists_training_runs_only(trainq: Trainq, four_runs: None) -> None:
    result = trainq("runs", "list", "--evals", "--where", "lr < 1")
    assert result.returncode == 2
    assert "--where" in result.stderr
