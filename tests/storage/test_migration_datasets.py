"""Migration 0005: dataset tables, and ``runs.data_sha256`` (NULL for every run made before)."""

from __future__ import annotations

import hashlib
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
from tests.storage.support import new_run, sqlite_url


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
def db_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at revision 0004 holding one run."""
    if request.param == "sqlite":
        database = Database(sqlite_url(tmp_path / "old.db"))
    else:
        require_postgres()
        name = f"trainq_test_0005_{os.getpid()}"
        create_postgres_database(name)
        database = Database(postgres_url(name))
    _migrate(database, "0004_run_attempts")
    with database.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO runs (kind, status, config, seed, queue, attempt, max_attempts, "
                "cancel_requested, steps_done, tags, created_at) VALUES ('train', 'queued', "
                "'{\"steps\": 10}', 1, 'train', 0, 2, false, 0, '{}', CURRENT_TIMESTAMP)"
            )
        )
    yield database
    database.dispose(close=True)
    if request.param == "postgres":
        drop_postgres_database(name)


def _table_names(database: Database) -> set[str]:
    return set(sa.inspect(database.engine).get_table_names())


def test_runs_made_before_0005_train_on_the_built_in_data(db_at_0004: Database) -> None:
    db_at_0004.upgrade()
    repo = Repository(db_at_0004)

    (old,) = repo.list_runs()
    assert old.data_sha256 is None
    assert {"dataset_versions", "dataset_chunks"} <= _table_names(db_at_0004)
    blob = b"data" * 100
    digest = hashlib.sha256(blob).hexdigest()
    version, _ = repo.add_dataset_version(
        name="table",
        sha256=digest,
        feature_kind="uint8",
        features=4,
        classes=2,
        train_examples=5,
        test_examples=0,
        class_names=(),
        size_bytes=len(blob),
        source={},
        chunks=[(0, blob, digest)],
    )
    run = new_run(repo, config={"steps": 1, "data_sha256": version.sha256})
    assert repo.list_runs(data_sha256=[digest]) == [run]


def test_downgrading_to_0004_drops_the_datasets_and_upgrading_makes_them_again(
    db_at_0004: Database,
) -> None:
    db_at_0004.upgrade()
    _migrate(db_at_0004, "0004_run_attempts", down=True)

    assert not {"dataset_versions", "dataset_chunks"} & _table_names(db_at_0004)
    columns = {c["name"] for c in sa.inspect(db_at_0004.engine).get_columns("runs")}
    assert "data_sha256" not in columns
    db_at_0004.upgrade()
    assert Repository(db_at_0004).list_runs()[0].data_sha256 is None


@pytest.mark.parametrize(
    "db_at_0004", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgresql_stores_chunks_uncompressed(db_at_0004: Database) -> None:
    db_at_0004.upgrade()
    query = (
        "SELECT attstorage FROM pg_attribute "
        "WHERE attrelid = 'dataset_chunks'::regclass AND attname = 'data'"
    )
    with db_at_0004.engine.connect() as connection:
        # 'e' (external): pglz's compression took 13 times as long as the rest of storing.
        assert connection.execute(sa.text(query)).scalar_one() == "e"
