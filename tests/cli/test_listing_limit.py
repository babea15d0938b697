"""A listing that leaves runs out says how many it shows of how many match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import Database, Repository, Settings
from tests.cli.conftest import Trainq, embedded_env
from tests.cli.seeding import queued_run, succeeded_run


@pytest.fixture(scope="module")
def five_runs(home: Path) -> None:
    """Four succeeded runs (two tagged team=vision) and a queued one."""
    settings = Settings.from_env(embedded_env(home))
    database = Database(settings.database_url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    for index in range(4):
        succeeded_run(repository, tags={"team": "vision"} if index % 2 else {})
    queued_run(repository)


def test_a_limited_table_says_how_many_runs_it_leaves_out(trainq: Trainq, five_runs: None) -> None:
    result = trainq("runs", "list", "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert "showing 3 of 5 (--limit N, or --all)" in result.stderr
    assert "showing" not in result.stdout


def test_the_count_follows_the_filters(trainq: Trainq, five_runs: None) -> None:
    assert (
        "showing 1 of 4" in trainq("runs", "list", "--status", "succeeded", "--limit", "1").stderr
    )
    assert "showing 1 of 2" in trainq("runs", "list", "--tag", "team=vision", "--limit", "1").stderr


def test_all_lists_every_run_and_a_whole_listing_says_nothing(
    trainq: Trainq, five_runs: None
) -> None:
    every = trainq("runs", "list", "--all", "--limit", "1")
    assert "showing" not in every.stderr and len(json_ids(trainq, "--all")) == 5
    assert "showing" not in trainq("runs", "list", "--limit", "5").stderr


def test_json_is_unchanged_by_the_limit_note(trainq: Trainq, five_runs: None) -> None:
    result = trainq("runs", "list", "--limit", "3", "--json")
    assert len(json.loads(result.stdout)) == 3 and result.stderr == ""


def json_ids(trainq: Trainq, *options: str) -> list[int]:
    return [run["id"] for run in json.loads(trainq("runs", "list", "--json", *options).stdout)]
