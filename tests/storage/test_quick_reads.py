"""The quick read path (``storage.quick_reads``) returns exactly what the repository returns, on
the real SQLite database, and steps aside (None) wherever the repository must take over."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from storage import Database, Repository
from storage.quick_reads import HEAD_REVISIONS, QUICK_TIMEOUT_S, QuickReader
from storage.records import RunStatus
from storage.schema_state import HEAD_REVISIONS as ALEMBIC_HEAD_REVISIONS
from tests.services import postgres_url, require_postgres
from tests.storage.support import FakeClock, chunk, claim, execute_sql, new_run, sqlite_url

#: Filters of ``list_runs``, each compared between the two paths.
FILTERS: list[dict[str, Any]] = [
    {},
    {"limit": 3},
    {"limit": 0},
    {"statuses": [RunStatus.RUNNING]},
    {"statuses": [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED]},
    {"statuses": []},
    {"tags": {"team": "vision"}},
    {"tags": {"team": "vision", "phase.v2": 'quote "and" ünïcode'}},
    {"tags": {"team": "nobody"}},
    {"name": "baseline"},
    {"name": "missing"},
    {"sweep_id": 4},
    {"sweep_id": 4, "statuses": [RunStatus.QUEUED], "limit": 1},
    {"data_sha256": ["ab" * 32]},
    {"data_sha256": ["ab" * 32, "cd" * 32], "limit": 2},
    {"data_sha256": []},
    {"archived": True},
    {"archived": None},
    {"archived": None, "name": "baseline", "limit": 2},
]


@pytest.fixture
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database in a file of its own."""
    path = tmp_path / "trainq.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(sqlite_url(path))
    yield database
    database.dispose(close=True)


@pytest.fixture
def database(db: Database) -> Database:
    """The migrated SQLite or PostgreSQL database of ``tests/storage/conftest.py``."""
    return db


@pytest.fixture
def seeded(database: Database) -> Repository:
    """Runs in every status, with names, tags, sweeps, summaries, errors, leases and metrics."""
    clock = FakeClock()
    repo = Repository(database, clock=clock)
    for index in range(12):
        clock.advance(1.234567)  # microseconds in every timestamp
        tags = {"team": "vision"} if index % 2 else {}
        if index % 4 == 1:
            tags["phase.v2"] = 'quote "and" ünïcode'
        run = new_run(
            repo,
            name="baseline" if index % 3 == 0 else None,
            tags=tags,
            config={"learning_rate": 0.01 * (index + 1), "steps": 2000, "nested": {"a": [1, 2]}},
        )
        if index in (4, 5, 8):  # trials of sweep 4 that never finish (no sweep row is needed)
            trial = (index, run.id)
            execute_sql(database, "UPDATE runs SET sweep_id = 4, trial = ? WHERE id = ?", trial)
        if index % 3 != 2:  # trained on one of two dataset versions (no version row is needed)
            data = ("ab" if index % 3 else "cd") * 32
            execute_sql(database, "UPDATE runs SET data_sha256 = ? WHERE id = ?", (data, run.id))
        if index % 4 == 0:
            continue  # queued
        claimed = claim(repo, run.id)
        repo.record_chunk(run.id, claimed.attempt, chunk(1, 700), lease_ttl_s=60)
        if index % 4 == 1:
            repo.record_chunk(run.id, claimed.attempt, chunk(701, 300), lease_ttl_s=60)
            continue  # running
        succeeded = index % 4 == 2
        repo.finish_run(
            run.id,
            claimed.attempt,
            RunStatus.SUCCEEDED if succeeded else RunStatus.FAILED,
            summary={"final_loss": 0.5, "pruned_at_step": None} if succeeded else None,
            error=None if succeeded else "out of memory",
        )
    repo.cancel_job(new_run(repo).id, kind=repo.get_run(1).kind)
    repo.set_run_note(3, "lr too high? ünïcode")
    repo.archive_runs([3, 7])  # finished runs, hidden unless asked for
    return repo


def quick_reader(database: Database) -> QuickReader:
    reader = QuickReader.open(database.url)
    assert reader is not None
    return reader


def test_the_head_revisions_are_alembic_s() -> None:
    assert set(ALEMBIC_HEAD_REVISIONS) == HEAD_REVISIONS


@pytest.mark.parametrize("filters", FILTERS, ids=[repr(f) for f in FILTERS])
def test_list_runs_equals_the_repository_s(
    seeded: Repository, database: Database, filters: dict[str, Any]
) -> None:
    expected = seeded.list_runs(**filters)
    with quick_reader(database) as reader:
        assert reader.list_runs(**filters) == expected
    if filters in ({}, {"limit": 3}):
        assert expected  # the comparison is not of two empty lists
        assert {run.status for run in seeded.list_runs()} == set(RunStatus)


def test_metric_windows_equal_the_repository_s(seeded: Repository, database: Database) -> None:
    running = seeded.list_runs(statuses=[RunStatus.RUNNING])
    assert running
    with quick_reader(database) as reader:
        for run in running:
            for first, last in [(None, None), (1, 700), (650, 720), (None, 5), (990, None)]:
                quick = reader.read_metric_arrays(run.id, first_step=first, last_step=last)
                assert quick is not None
                full = seeded.read_metric_arrays(run.id, first_step=first, last_step=last)
                for index in range(3):
                    assert quick[index].dtype == full[index].dtype
                    np.testing.assert_array_equal(quick[index], full[index])
            assert len(full[0]) == 1000 - 990 + 1  # the last range read


def test_a_tag_key_the_repository_refuses_is_refused_alike(
    seeded: Repository, database: Database
) -> None:
    from storage.errors import InvalidValueError

    with pytest.raises(InvalidValueError) as full:
        seeded.list_runs(tags={"bad key": "x"})
    with quick_reader(database) as reader, pytest.raises(InvalidValueError) as quick:
        reader.list_runs(tags={"bad key": "x"})
    assert str(quick.value) == str(full.value)


def test_it_steps_aside_where_the_repository_must_take_over(
    sqlite_database: Database, tmp_path: Path
) -> None:
    url = sqlite_database.url
    quick_reader(sqlite_database).close()
    missing = tmp_path / "missing.db"
    assert QuickReader.open(sqlite_url(missing)) is None
    assert not missing.exists()  # nothing created
    empty = tmp_path / "empty.db"
    empty.touch()
    assert QuickReader.open(sqlite_url(empty)) is None
    assert QuickReader.open(f"{url}?timeout=3") is None
    assert QuickReader.open("mysql://root@127.0.0.1/trainq") is None
    not_trainq = tmp_path / "other.db"
    execute_sql(Database(sqlite_url(not_trainq)), "CREATE TABLE t (x INTEGER)")
    assert QuickReader.open(sqlite_url(not_trainq)) is None
    execute_sql(sqlite_database, "UPDATE alembic_version SET version_num = '0003_evaluation_jobs'")
    assert QuickReader.open(url) is None  # an older schema: the repository upgrades it


@pytest.mark.postgres
def test_it_steps_aside_from_a_postgresql_it_cannot_read() -> None:
    require_postgres()
    started = time.monotonic()
    assert QuickReader.open(postgres_url("postgres")) is None  # no trainq schema there
    assert QuickReader.open("postgresql+psycopg://postgres@127.0.0.1:1/trainq") is None
    assert QuickReader.open("postgresql://postgres@127.0.0.1:5432/no_such_database") is None
    assert QuickReader.open("postgres://postgres@127.0.0.1:5432/db?no_such_option=1") is None
    assert time.monotonic() - started < QUICK_TIMEOUT_S


def test_a_failed_read_gives_none(sqlite_database: Database) -> None:
    with quick_reader(sqlite_database) as reader:
        execute_sql(sqlite_database, "ALTER TABLE runs RENAME TO runs_elsewhere")
        assert reader.list_runs() is None
        assert reader.read_metric_arrays(1) is not None  # metric_chunks is still there


def test_runs_list_imports_no_sqlalchemy(
    seeded: Repository, database: Database, tmp_path: Path
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "TRAINQ_HOME": str(tmp_path),
        "TRAINQ_DATABASE_URL": database.url,
    }
    listing = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "api_cli", "runs", "list", "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "sqlalchemy" not in listing.stderr
    rows = list(csv.DictReader(io.StringIO(listing.stdout)))
    assert [int(row["id"]) for row in rows] == [run.id for run in seeded.list_runs()]
    running = [row for row in rows if row["status"] == "running"]
    # The latest window of a running run, read by the quick path: the mean loss of steps 501-1000.
    assert running and all(float(row["loss"]) == pytest.approx(750.5) for row in running)
