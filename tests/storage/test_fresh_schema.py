"""A new embedded database gets its schema from the models: the very schema the migrations build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect

from storage import Database, Repository
from storage.fresh_schema import create_fresh_schema
from storage.schema import upgrade_to_head
from storage.schema_state import schema_state
from tests.storage.support import new_run, sqlite_url


def _snapshot(connection: Connection) -> dict[str, Any]:
    """Every table's columns, keys, indexes and constraints, as the database reports them."""
    inspector = inspect(connection)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], c["default"])
                for c in inspector.get_columns(table)
            ),
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    tuple(sorted(fk["options"].items())),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (unique["name"], tuple(unique["column_names"]))
                for unique in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(
                (check["name"], re.sub(r"\s+", " ", check["sqltext"]).strip())
                for check in inspector.get_check_constraints(table)
            ),
        }
    return tables


def test_a_new_database_gets_the_schema_the_migrations_build(tmp_path: Path) -> None:
    fresh, migrated = (
        Database(sqlite_url(tmp_path / "fresh.db")),
        Database(sqlite_url(tmp_path / "migrated.db")),
    )
    fresh.ensure_schema(auto_upgrade=True)
    with migrated.engine.connect() as connection:
        upgrade_to_head(connection)

    with fresh.engine.connect() as a, migrated.engine.connect() as b:
        assert _snapshot(a) == _snapshot(b)
        assert schema_state(a).current == schema_state(b).current == schema_state(a).head
    fresh.dispose(close=True)
    migrated.dispose(close=True)


def test_a_fresh_schema_is_at_head_for_alembic_and_takes_runs(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "fresh.db"))
    database.ensure_schema(auto_upgrade=True)

    before, after = database.upgrade()  # Alembic finds nothing to do

    assert before == after
    assert after.up_to_date
    repo = Repository(database)
    run = new_run(repo)
    assert repo.get_run(run.id) == run
    database.dispose(close=True)


def test_a_database_with_tables_is_left_to_the_migrations(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "old.db"))
    with database.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE something_else (id INTEGER PRIMARY KEY)")

        assert not create_fresh_schema(connection)
        assert inspect(connection).get_table_names() == ["something_else"]
    database.dispose(close=True)
