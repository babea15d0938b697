"""Migrations: an empty database is brought to head; an old or missing schema is explained."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import Database, Repository, SchemaOutdatedError
from storage.models import Base
from storage.schema import packaged_revisions
from storage.schema_state import HEAD_REVISIONS, KNOWN_REVISIONS, schema_state
from tests.services import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
)
from tests.storage.support import (
    execute_sql,
    new_run,
    sqlite_url,
)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        database = Database(sqlite_url(tmp_path / "empty.db"))
        yield database
        database.dispose(close=True)
        return
    require_postgres()
    name = f"trainq_test_empty_{os.getpid()}"
    create_postgres_database(name)
    database = Database(postgres_url(name))
    yield database
    database.dispose(close=True)
    drop_postgres_database(name)


def test_upgrade_creates_every_table_in_an_empty_database(empty_db: Database) -> None:
    empty_db.upgrade()

    repo = Repository(empty_db)
    run = new_run(repo)
    assert repo.get_run(run.id) == run
    with empty_db.engine.connect() as connection:
        state = schema_state(connection)
    assert state.up_to_date
    assert state.current == state.head


def test_the_migrated_schema_matches_the_models_exactly(empty_db: Database) -> None:
    empty_db.upgrade()
    with empty_db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrading_twice_changes_nothing(empty_db: Database) -> None:
    empty_db.upgrade()
    run = new_run(Repository(empty_db))
    empty_db.upgrade()
    assert Repository(empty_db).get_run(run.id) == run


def test_an_empty_database_without_auto_upgrade_says_to_run_trainq_db_upgrade(
    empty_db: Database,
) -> None:
    with pytest.raises(SchemaOutdatedError, match="run `trainq db upgrade`"):
        empty_db.ensure_schema(auto_upgrade=False)


def test_an_empty_database_with_auto_upgrade_is_migrated_on_first_use(
    empty_db: Database,
) -> None:
    empty_db.ensure_schema(auto_upgrade=True)
    assert new_run(Repository(empty_db)).id == 1
    empty_db.ensure_schema(auto_upgrade=False)


def test_a_database_migrated_by_a_newer_trainq_is_refused(empty_db: Database) -> None:
    empty_db.upgrade()
    execute_sql(empty_db, "UPDATE alembic_version SET version_num = 'from_the_future'")
    with pytest.raises(SchemaOutdatedError, match="newer than this trainq"):
        Database(empty_db.engine.url.render_as_string(False)).ensure_schema(auto_upgrade=True)


def test_upgrading_a_database_migrated_by_a_newer_trainq_explains_why_it_cannot(
    empty_db: Database,
) -> None:
    empty_db.upgrade()
    execute_sql(empty_db, "UPDATE alembic_version SET version_num = 'from_the_future'")
    with pytest.raises(SchemaOutdatedError, match="newer trainq"):
        empty_db.upgrade()


def test_using_an_unmigrated_database_says_to_run_trainq_db_upgrade(empty_db: Database) -> None:
    empty_db.ping()
    with pytest.raises(SchemaOutdatedError, match="trainq db upgrade"):
        Repository(empty_db).list_runs()


def _upgrade(url: str) -> None:
    Database(url).upgrade()


def test_two_processes_upgrading_one_database_at_once_both_succeed(empty_db: Database) -> None:
    url = empty_db.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_upgrade, args=(url,)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0]
    empty_db.ensure_schema(auto_upgrade=False)


def test_the_recorded_revisions_match_the_packaged_migrations() -> None:
    head, known = packaged_revisions()
    assert head == HEAD_REVISIONS
    assert known == KNOWN_REVISIONS
