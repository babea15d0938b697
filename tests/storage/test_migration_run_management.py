"""Migration 0006: ``runs.note``, ``runs.archived_at`` and ``sweeps.archived_at``, NULL for
every row made before (nothing annotated, nothing archived); downgrade drops them only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from storage import Database, Repository
from tests.services import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
)
from tests.storage.support import count_rows, sqlite_url

NEW_COLUMNS = {"runs": {"note", "archived_at"}, "sweeps": {"archived_at"}}


def _migrate(database: Database, revision: str, *, down: bool = False) -> None:
    from storage.schema import alembic_config

    with database.engine.connect() as connection:
        config = alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at revision 0005 holding a sweep and one finished run with an attempt."""
    if request.param == "sqlite":
        database = Database(sqlite_url(tmp_path / "old.db"))
    else:
        require_postgres()
        name = f"trainq_test_0006_{os.getpid()}"
        create_postgres_database(name)
        database = Database(postgres_url(name))
    _migrate(database, "0005_datasets")
    with database.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO sweeps (name, status, spec, max_concurrent, max_attempts, "
                "created_at) VALUES ('old', 'succeeded', '{}', 1, 2, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO runs (kind, name, status, config, seed, queue, attempt, "
                "max_attempts, cancel_requested, steps_done, tags, created_at) VALUES ('train', "
                "'before', 'succeeded', '{\"steps\": 10}', 1, 'train', 1, 2, false, 10, "
                '\'{"team": "vision"}\', CURRENT_TIMESTAMP)'
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO run_attempts (run_id, number, attempt, started_at, outcome, "
                "steps_at_start) VALUES (1, 1, 1, CURRENT_TIMESTAMP, 'succeeded', 0)"
            )
        )
    yield database
    database.dispose(close=True)
    if request.param == "postgres":
        drop_postgres_database(name)


def _columns(database: Database, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(database.engine).get_columns(table)}


def test_runs_and_sweeps_made_before_0006_are_listed_unannotated(db_at_0005: Database) -> None:
    db_at_0005.upgrade()
    repo = Repository(db_at_0005)

    (old,) = repo.list_runs()  # not archived: listed by default
    assert (old.name, old.note, old.archived_at, old.tags) == (
        "before",
        None,
        None,
        {"team": "vision"},
    )
    assert repo.list_sweeps()[0].archived_at is None
    noted = repo.set_run_note(old.id, "made before 0006")
    assert repo.archive_runs([old.id])[0].note == noted.note
    assert repo.list_runs() == [] and repo.list_sweeps(archived=True) == []


def test_downgrading_to_0005_drops_the_columns_and_keeps_every_run(db_at_0005: Database) -> None:
    db_at_0005.upgrade()
    repo = Repository(db_at_0005)
    repo.set_run_note(1, "gone with the column")
    repo.archive_runs([1])

    _migrate(db_at_0005, "0005_datasets", down=True)

    for table, columns in NEW_COLUMNS.items():
        assert not columns & _columns(db_at_0005, table), table
    # SQLite's DROP COLUMN, not a rebuild of `runs`: nothing cascaded into the run's attempts.
    assert count_rows(db_at_0005, "run_attempts", 1) == 1
    db_at_0005.upgrade()
    (run,) = Repository(db_at_0005).list_runs()
    assert (run.name, run.note, run.archived_at) == ("before", None, None)
