"""Storage fixtures: every test using ``db`` or ``repo`` runs on SQLite and on PostgreSQL.

PostgreSQL: one throwaway database per test session (``trainq_test_storage_<pid>``), migrated
once, its tables truncated before each test. SQLite: a migrated template file copied per test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Database, Repository
from tests.services import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
)
from tests.storage.support import (
    FakeClock,
    execute_sql,
    sqlite_url,
)

TABLES = (
    "evaluations, checkpoints, metric_chunks, validation_metrics, rung_results, sweep_trials, "
    "sweeps, runs, dataset_chunks, dataset_versions"
)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Database]:
    """A migrated PostgreSQL database for this test session, dropped at the end."""
    require_postgres()
    name = f"trainq_test_storage_{os.getpid()}"
    create_postgres_database(name)
    database = Database(postgres_url(name))
    database.upgrade()
    yield database
    database.dispose(close=True)
    drop_postgres_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating per test)."""
    path = tmp_path_factory.mktemp("template") / "trainq.db"
    database = Database(sqlite_url(path))
    database.upgrade()
    database.dispose(close=True)  # the last close checkpoints the WAL into the file
    return path


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database: a fresh SQLite file, or the truncated PostgreSQL one."""
    if request.param == "sqlite":
        path = tmp_path / "trainq.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        database = Database(sqlite_url(path))
        yield database
        database.dispose(close=True)
        return
    database = request.getfixturevalue("postgres_database")
    execute_sql(database, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    yield database


@pytest.fixture
def clock() -> FakeClock:
    """The repository's clock, starting at 2030-01-01 12:00 UTC."""
    return FakeClock()


@pytest.fixture
def repo(db: Database, clock: FakeClock) -> Repository:
    """A repository on ``db`` driven by the fake ``clock``."""
    return Repository(db, clock=clock)
