"""Migration 0003: evaluation jobs leave ``runs`` for their own table, with the data in them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from storage import Database, JobKind, Repository, RunStatus
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
_RUNS = sa.table(
    "runs",
    *(sa.column(name) for name in ("id", "kind", "name", "status", "seed", "queue", "attempt")),
    *(sa.column(name) for name in ("max_attempts", "cancel_requested", "steps_done", "error")),
    sa.column("config", json_column_type()),
    sa.column("tags", json_column_type()),
    sa.column("created_at", UTCDateTime()),
    sa.column("finished_at", UTCDateTime()),
)
_EVALUATIONS = sa.table(
    "evaluations",
    *(sa.column(name) for name in ("id", "run_id", "checkpoint_step", "split", "loss")),
    *(sa.column(name) for name in ("accuracy", "job_id")),
    sa.column("per_class", json_column_type()),
    sa.column("confusion", json_column_type()),
    sa.column("created_at", UTCDateTime()),
)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at revision 0001 holding training runs, eval jobs (as runs) and results."""
    if request.param == "sqlite":
        database = Database(sqlite_url(tmp_path / "old.db"))
    else:
        require_postgres()
        name = f"trainq_test_0003_{os.getpid()}"
        create_postgres_database(name)
        database = Database(postgres_url(name))
    _migrate(database, "0001")
    _fill_as_0001_stored_it(database)
    yield database
    database.dispose(close=True)
    if request.param == "postgres":
        drop_postgres_database(name)


def _migrate(database: Database, revision: str, *, down: bool = False) -> None:
    with database.engine.connect() as connection:
        config = alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)


def _run(run_id: int, kind: str, status: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run_id,
        "kind": kind,
        "name": f"{kind} {run_id}",
        "status": status,
        "seed": 1,
        "queue": kind,
        "attempt": 1 if status != "queued" else 0,
        "max_attempts": 3,
        "cancel_requested": False,
        "steps_done": 100 if kind == "train" else 0,
        "error": None,
        "config": config,
        "tags": {},
        "created_at": CREATED,
        "finished_at": None if status == "queued" else CREATED,
    }


def _evaluation(evaluation_id: int, job_id: int | None) -> dict[str, Any]:
    return {
        "id": evaluation_id,
        "run_id": 1,
        "checkpoint_step": 100,
        "split": "test",
        "loss": 0.5,
        "accuracy": 0.8,
        "job_id": job_id,
        "per_class": [0.8] * 10,
        "confusion": [[1 if i == j else 0 for j in range(10)] for i in range(10)],
        "created_at": CREATED,
    }


def _fill_as_0001_stored_it(database: Database) -> None:
    """Runs 1 and 3 train; 2 and 4 evaluate run 1; 5 evaluates a run that no longer exists."""
    runs = [
        _run(1, "train", "succeeded", {"steps": 100}),
        _run(2, "eval", "succeeded", {"run_id": 1, "checkpoint_step": 100, "split": "test"}),
        _run(3, "train", "succeeded", {"steps": 100}),
        _run(4, "eval", "queued", {"run_id": 1, "checkpoint_step": None, "split": "train"}),
        _run(5, "eval", "failed", {"run_id": 99, "split": "test"}),
    ]
    evaluations = [_evaluation(1, 2), _evaluation(2, None), _evaluation(3, 5)]
    with database.engine.begin() as connection:
        connection.execute(_RUNS.insert(), runs)
        connection.execute(_EVALUATIONS.insert(), evaluations)
        if database.dialect_name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("runs", "evaluations"):
                connection.execute(
                    sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)")
                )


def test_upgrading_from_0001_moves_eval_jobs_out_of_runs_under_their_ids(
    old_db: Database,
) -> None:
    old_db.upgrade()
    repo = Repository(old_db)

    assert [run.id for run in repo.list_runs(kind=None)] == [3, 1]
    jobs = repo.list_evaluation_jobs()
    assert [(job.id, job.run_id, job.checkpoint_step, job.split) for job in jobs] == [
        (4, 1, None, "train"),
        (2, 1, 100, "test"),
    ]
    assert [job.status for job in jobs] == [RunStatus.QUEUED, RunStatus.SUCCEEDED]
    assert repo.get_evaluation_for_job(2) is not None
    assert repo.get_evaluation_for_job(2).id == 1  # type: ignore[union-attr]
    assert [e.job_id for e in repo.list_evaluations(1)] == [2, None, None]  # 5's run is gone


def test_after_the_upgrade_both_id_sequences_continue_and_moved_jobs_still_work(
    old_db: Database,
) -> None:
    old_db.upgrade()
    clock = FakeClock()
    repo = Repository(old_db, clock=clock)

    new_job = repo.create_evaluation_job(
        run_id=3, checkpoint_step=100, split="test", queue="eval", max_attempts=3
    )
    first = repo.create_run(kind=JobKind.TRAIN, config={}, seed=1, queue="train", max_attempts=1)
    second = repo.create_run(kind=JobKind.TRAIN, config={}, seed=1, queue="train", max_attempts=1)
    assert new_job.id > 4
    assert first.id > 3 and second.id == first.id + 1  # no evaluation job in between
    claimed = repo.claim_evaluation_job(4, owner="w", worker_host="h", lease_ttl_s=LEASE_TTL_S)
    assert claimed is not None and claimed.attempt == 1


def test_downgrading_to_0002_puts_eval_jobs_back_into_runs_with_their_results(
    old_db: Database,
) -> None:
    old_db.upgrade()
    _migrate(old_db, "0002_sweeps", down=True)
    with old_db.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, kind, config FROM runs WHERE kind = 'eval' ORDER BY id")
        ).all()
        linked = connection.execute(
            sa.text("SELECT job_id FROM evaluations WHERE id = 1")
        ).scalar_one()
    assert len(rows) == 2
    assert linked in {row[0] for row in rows}

    old_db.upgrade()  # and up again: the same jobs, results linked
    repo = Repository(old_db)
    jobs = repo.list_evaluation_jobs()
    assert sorted((job.checkpoint_step or 0, job.split) for job in jobs) == [
        (0, "train"),
        (100, "test"),
    ]
    result = repo.list_evaluations(1)[0]
    assert result.job_id is not None
    assert repo.get_evaluation_job(result.job_id).checkpoint_step == 100
