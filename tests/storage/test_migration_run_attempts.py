"""Migration 0004: ``run_attempts`` starts with the latest attempt of every claimed run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from storage import AttemptOutcome, Database, Repository
from storage.column_types import UTCDateTime, json_column_type
from storage.schema import alembic_config
from tests.services import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
)
from tests.storage.support import LEASE_TTL_S, FakeClock, sqlite_url

CREATED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
STARTED = CREATED + timedelta(minutes=1)
FINISHED = CREATED + timedelta(minutes=5)
_RUNS = sa.table(
    "runs",
    *(sa.column(name) for name in ("id", "kind", "status", "seed", "queue", "attempt")),
    *(sa.column(name) for name in ("max_attempts", "cancel_requested", "steps_done", "error")),
    *(sa.column(name) for name in ("worker_host", "lease_owner", "device")),
    sa.column("config", json_column_type()),
    sa.column("tags", json_column_type()),
    sa.column("created_at", UTCDateTime()),
    sa.column("started_at", UTCDateTime()),
    sa.column("finished_at", UTCDateTime()),
    sa.column("lease_expires_at", UTCDateTime()),
)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at revision 0003 holding a queued, a running and a failed run."""
    if request.param == "sqlite":
        database = Database(sqlite_url(tmp_path / "old.db"))
    else:
        require_postgres()
        name = f"trainq_test_0004_{os.getpid()}"
        create_postgres_database(name)
        database = Database(postgres_url(name))
    _migrate(database, "0003_evaluation_jobs")
    with database.engine.begin() as connection:
        connection.execute(_RUNS.insert(), [_run(1, "queued", 0), _run(2, "running", 1)])
        connection.execute(_RUNS.insert(), [_run(3, "failed", 2)])
        if database.dialect_name == "postgresql":  # explicit ids: move the sequence past them
            connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('runs', 'id'), 3)"))
    yield database
    database.dispose(close=True)
    if request.param == "postgres":
        drop_postgres_database(name)


def _migrate(database: Database, revision: str, *, down: bool = False) -> None:
    with database.engine.connect() as connection:
        config = alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)


def _run(run_id: int, status: str, attempt: int) -> dict[str, Any]:
    claimed = attempt > 0
    return {
        "id": run_id,
        "kind": "train",
        "status": status,
        "seed": 1,
        "queue": "train",
        "attempt": attempt,
        "max_attempts": 2,
        "cancel_requested": False,
        "steps_done": 40 if claimed else 0,
        "error": "worker lost 2 times" if status == "failed" else None,
        "worker_host": f"host-{run_id}" if claimed else None,
        "lease_owner": f"host-{run_id}:1:x" if status == "running" else None,
        "device": "CPU:0" if status == "failed" else None,
        "config": {"steps": 100},
        "tags": {},
        "created_at": CREATED,
        "started_at": STARTED if claimed else None,
        "finished_at": FINISHED if status == "failed" else None,
        "lease_expires_at": FINISHED if status == "running" else None,
    }


def test_upgrading_from_0003_records_the_latest_attempt_of_every_claimed_run(
    db_at_0003: Database,
) -> None:
    db_at_0003.upgrade()
    repo = Repository(db_at_0003)

    assert repo.list_attempts(1) == []  # never claimed
    [running] = repo.list_attempts(2)
    assert (running.attempt, running.worker_host) == (1, "host-2")
    assert running.lease_owner == "host-2:1:x"
    assert (running.started_at, running.ended_at, running.outcome) == (STARTED, None, None)
    [failed] = repo.list_attempts(3)
    assert (failed.number, failed.attempt, failed.outcome) == (1, 2, AttemptOutcome.FAILED)
    assert (failed.device, failed.ended_at, failed.steps_at_end) == ("CPU:0", FINISHED, 40)
    assert failed.error == "worker lost 2 times"


def test_after_the_upgrade_a_takeover_closes_the_migrated_attempt_and_opens_the_next(
    db_at_0003: Database,
) -> None:
    db_at_0003.upgrade()
    clock = FakeClock()  # long after the migrated lease expired
    repo = Repository(db_at_0003, clock=clock)

    repo.requeue_expired(2)
    repo.claim_run(2, owner="w", worker_host="host-new", lease_ttl_s=LEASE_TTL_S)

    first, second = repo.list_attempts(2)
    assert (first.number, first.outcome) == (1, AttemptOutcome.LOST)
    assert (second.number, second.attempt, second.worker_host) == (2, 2, "host-new")


def test_downgrading_to_0003_drops_the_history_and_upgrading_rebuilds_it(
    db_at_0003: Database,
) -> None:
    db_at_0003.upgrade()
    _migrate(db_at_0003, "0003_evaluation_jobs", down=True)
    assert "run_attempts" not in sa.inspect(db_at_0003.engine).get_table_names()

    db_at_0003.upgrade()

    assert len(Repository(db_at_0003).list_attempts(3)) == 1
