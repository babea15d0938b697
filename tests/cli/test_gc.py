"""`trainq gc` and `Client.gc`: finished runs lose their spare checkpoints, running ones none, and
the command says how much that frees (per run in JSON and CSV, a total in the table)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trainq as sdk

from storage import Database, Repository, RunStatus, Settings
from storage.records import MetricChunk
from tests.cli.conftest import Trainq, embedded_env
from tests.cli.seeding import queued_run

WEIGHTS = {"W": np.ones((784, 10), np.float32), "b": np.zeros(10, np.float32)}
#: Validation accuracy at the checkpoints of each run: the best is at step 200.
VALIDATION = {100: 0.70, 200: 0.86, 300: 0.84, 400: 0.85}


def with_checkpoints(repository: Repository, *, finish: bool) -> int:
    """A run with checkpoints at steps 100..400 (validated), SUCCEEDED unless not ``finish``."""
    run = queued_run(repository, steps=400, chunk_steps=100, checkpoint_every_steps=100)
    claimed = repository.claim_run(run.id, owner="test:1:a", worker_host="test", lease_ttl_s=600)
    assert claimed is not None
    for step, accuracy in VALIDATION.items():
        losses = np.full(100, 0.5, np.float32)
        repository.record_chunk(
            run.id,
            claimed.attempt,
            MetricChunk(step - 99, losses, losses),
            lease_ttl_s=600,
            checkpoint=WEIGHTS,
            validation=(1 - accuracy, accuracy),
        )
    if finish:
        repository.finish_run(
            run.id, claimed.attempt, RunStatus.SUCCEEDED, summary={}, final_weights=WEIGHTS
        )
    return run.id


@pytest.fixture(scope="module")
def repository(home: Path) -> Iterator[Repository]:
    database = Database(Settings.from_env(embedded_env(home)).database_url)
    database.ensure_schema(auto_upgrade=True)
    yield Repository(database)
    database.dispose(close=True)


@pytest.fixture(scope="module")
def runs(repository: Repository) -> tuple[int, int, int]:
    """Two succeeded runs and a running one, four checkpoints each."""
    first = with_checkpoints(repository, finish=True)
    second = with_checkpoints(repository, finish=True)
    running = with_checkpoints(repository, finish=False)
    return first, second, running


def steps_of(repository: Repository, run_id: int) -> list[int]:
    return [info.step for info in repository.list_checkpoints(run_id)]


def test_a_dry_run_lists_what_each_run_would_lose_and_removes_nothing(
    trainq: Trainq, repository: Repository, runs: tuple[int, int, int]
) -> None:
    first, second, _ = runs
    size = repository.list_checkpoints(first)[0].size_bytes

    result = trainq("gc", "--dry-run", "--format", "json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True and report["removed"] == 6
    assert report["freed_bytes"] == 6 * size
    assert [(run["run_id"], run["removed_steps"]) for run in report["runs"]] == [
        (first, [100, 200, 300]),
        (second, [100, 200, 300]),
    ]
    assert all(steps_of(repository, run) == [100, 200, 300, 400] for run in runs)


def test_runs_finished_more_recently_than_older_than_are_left_alone(
    trainq: Trainq, runs: tuple[int, int, int]
) -> None:
    result = trainq("gc", "--older-than", "30d", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "nothing to remove (--keep-checkpoints last)" in result.stdout


def test_best_keeps_the_best_validated_checkpoint_and_csv_has_a_line_per_run(
    trainq: Trainq, repository: Repository, runs: tuple[int, int, int]
) -> None:
    first, _, running = runs

    result = trainq("gc", "--keep-checkpoints", "best", "--format", "csv")

    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["removed_steps"] for row in rows] == ["[100,300]", "[100,300]"]
    assert steps_of(repository, first) == [200, 400]
    assert steps_of(repository, running) == [100, 200, 300, 400]  # it may still resume
    assert "`trainq gc --vacuum` shrinks it" in result.stderr


def test_the_table_gives_the_total_and_vacuum_shrinks_the_file(
    trainq: Trainq, repository: Repository, runs: tuple[int, int, int]
) -> None:
    first, second, _ = runs
    size = repository.list_checkpoints(first)[0].size_bytes

    result = trainq("gc", "--vacuum")

    assert result.returncode == 0, result.stderr
    assert f"removed 2 checkpoints from 2 runs, freeing {2 * size / 1024:.1f} KiB" in result.stdout
    assert f"({2 * size:,} bytes)" in result.stdout
    assert "VACUUM: the SQLite file shrank by" in result.stderr
    assert steps_of(repository, first) == steps_of(repository, second) == [400]


def test_a_bad_age_names_the_option_and_the_units(trainq: Trainq) -> None:
    result = trainq("gc", "--older-than", "a month")

    assert result.returncode == 2
    assert "--older-than 'a month': give a number and a unit, e.g. 30d" in result.stderr


def test_the_python_api_thins_as_the_command_does(
    home: Path, repository: Repository, runs: tuple[int, int, int]
) -> None:
    run_id = with_checkpoints(repository, finish=True)
    seen: list[tuple[int, int]] = []

    with sdk.Client(sdk.Settings.from_env(embedded_env(home))) as client:
        report = client.gc(
            keep_checkpoints="best", on_run=lambda _, done, total: seen.append((done, total))
        )

    assert [(run.run_id, run.removed_steps) for run in report.runs] == [(run_id, (100, 300))]
    assert report.removed == 2 and not report.vacuumed
    assert seen == [(1, 1)]
