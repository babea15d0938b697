"""The database handle: engine settings, transactions, error translation, retries, fork safety."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from storage import (
    ConfigurationError,
    Database,
    DatabaseUnavailableError,
    Repository,
    RunStatus,
    SchemaOutdatedError,
    StorageError,
)
from tests.services import postgres_admin_connection
from tests.storage.support import execute_sql, new_run, sqlite_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    database = Database(sqlite_url(tmp_path / "trainq.db"))
    database.upgrade()
    return database


def test_sqlite_connections_use_wal_a_busy_timeout_foreign_keys_and_full_sync(
    sqlite_db: Database,
) -> None:
    pragmas = {
        name: execute_sql(sqlite_db, f"PRAGMA {name}")[0][0]
        for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
    }
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 2,
    }


@pytest.mark.postgres
def test_postgres_connections_bound_statements_locks_and_idle_transactions(
    postgres_database: Database,
) -> None:
    settings = {
        name: execute_sql(postgres_database, f"SHOW {name}")[0][0]
        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
    }
    assert settings == {
        "statement_timeout": "30s",
        "lock_timeout": "5s",
        "idle_in_transaction_session_timeout": "1min",
    }


def test_a_sqlite_write_transaction_holds_the_write_lock_from_its_first_statement(
    sqlite_db: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "trainq.db", timeout=0, isolation_level=None)
    try:
        with sqlite_db.transaction() as session:
            session.connection().exec_driver_sql("SELECT 1")  # a read, yet IMMEDIATE
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with sqlite_db.transaction(readonly=True) as session:
            session.connection().exec_driver_sql("SELECT 1")
            other.execute("BEGIN IMMEDIATE")  # a reader does not block a writer
            other.execute("ROLLBACK")
    finally:
        other.close()


def test_the_directory_of_a_new_sqlite_file_is_created(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "a" / "b" / "trainq.db"))
    database.ping()
    assert (tmp_path / "a" / "b").is_dir()


def test_a_sqlite_file_that_cannot_be_created_is_reported_as_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(DatabaseUnavailableError, match="TRAINQ_HOME"):
        Database(sqlite_url(tmp_path / "file" / "trainq.db")).ping()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_use_psycopg_3(scheme: str) -> None:
    database = Database(f"{scheme}://user:secret@db.example:5432/trainq")
    assert database.engine.url.drivername == "postgresql+psycopg"
    assert "secret" not in database.url


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_or_malformed_urls_are_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="TRAINQ_DATABASE_URL"):
        Database(url)


def test_ping_answers_when_the_database_is_up(db: Database) -> None:
    db.ping()


@pytest.mark.postgres
def test_ping_of_a_database_nobody_listens_on_fails_fast_and_says_what_to_check() -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="TRAINQ_DATABASE_URL"):
        Database("postgresql://postgres@127.0.0.1:1/trainq").ping()
    assert time.monotonic() - started < 6


def test_a_failed_transaction_is_rolled_back_and_its_driver_error_translated(
    db: Database,
) -> None:
    repo = Repository(db)
    run = new_run(repo)

    def break_midway(session: Session) -> None:
        session.connection().exec_driver_sql(
            f"UPDATE runs SET name = 'changed' WHERE id = {run.id}"
        )
        session.connection().exec_driver_sql("SELEC oops")

    with pytest.raises(StorageError) as raised:
        db.run(break_midway)
    assert type(raised.value) is StorageError
    assert repo.get_run(run.id).name is None


def test_a_missing_table_says_to_run_trainq_db_upgrade(db: Database) -> None:
    with pytest.raises(SchemaOutdatedError, match="trainq db upgrade"):
        db.run(lambda session: session.connection().exec_driver_sql("SELECT * FROM no_such"))


@pytest.mark.postgres
def test_idempotent_work_is_retried_when_the_connection_drops_mid_transaction(
    postgres_database: Database,
) -> None:
    calls: list[int] = []

    def work(session: Session) -> str:
        calls.append(1)
        if len(calls) == 1:
            session.connection().exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return "done"

    assert postgres_database.run(work, idempotent=True) == "done"
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(DatabaseUnavailableError):
        postgres_database.run(work, idempotent=False)


@pytest.mark.postgres
def test_retries_stop_at_the_deadline(postgres_database: Database) -> None:
    impatient = Database(postgres_database.engine.url.render_as_string(False), retry_deadline_s=0.3)

    def always_down(session: Session) -> None:
        raise DatabaseUnavailableError("still down")

    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="still down"):
        impatient.run(always_down, idempotent=True)
    assert 0.1 < time.monotonic() - started < 2


@pytest.mark.postgres
def test_pooled_connections_killed_by_a_server_restart_are_replaced_transparently(
    postgres_database: Database,
) -> None:
    repo = Repository(postgres_database)
    run = new_run(repo)
    database_name = postgres_database.engine.url.database
    with postgres_admin_connection() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database_name,),
        )
    assert repo.get_run(run.id).id == run.id


# Run in a fresh interpreter, so that the fork copies only this script's state: forking the test
# process itself would copy whatever threads earlier tests left in it (TensorFlow's pools, an
# embedded client's job thread), whose locks a forked child can wait on forever.
_FORKING_PARENT = """
import multiprocessing, sys
from storage import Database, Repository
from tests.storage.support import claim

url, first, second = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
repo = Repository(Database(url))
repo.get_run(first)  # the pool now holds a connection the child must not share


def use_database_in_child() -> None:
    claim(Repository(Database(url)), second, owner="child")


child = multiprocessing.get_context("fork").Process(target=use_database_in_child)
child.start()
child.join(timeout=60)
assert child.exitcode == 0, f"the forked child ended with {child.exitcode}"
assert repo.get_run(first).id == first  # the parent's pooled connection still works
"""


def test_a_forked_child_uses_its_own_connections_and_leaves_the_parents_intact(
    db: Database,
) -> None:
    repo = Repository(db)
    first, second = new_run(repo), new_run(repo)
    url = db.engine.url.render_as_string(hide_password=False)

    parent = subprocess.run(
        [sys.executable, "-c", _FORKING_PARENT, url, str(first.id), str(second.id)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert parent.returncode == 0, parent.stderr
    assert repo.get_run(second.id).status is RunStatus.RUNNING
    assert repo.get_run(first.id).status is RunStatus.QUEUED
