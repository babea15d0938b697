"""Helpers shared by the storage tests: a fake clock, builders, raw SQL access."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from storage import Database, JobKind, MetricChunk, Repository, RunRecord
from storage.records import EvaluationJobRecord

#: Lease used by the tests' workers.
LEASE_TTL_S = 30.0
#: Weights of the seed's model shape.
WEIGHTS = {"W": np.ones((784, 10), np.float32), "b": np.zeros(10, np.float32)}


@dataclass
class FakeClock:
    """A clock the test moves by hand; the repository reads it for "now"."""

    now: datetime = field(default_factory=lambda: datetime(2030, 1, 1, 12, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move time forward and return the new now."""
        self.now += timedelta(seconds=seconds)
        return self.now


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path}"


def execute_sql(db: Database, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run raw SQL behind the repository's back (to corrupt or inspect rows); ``?`` placeholders."""
    if db.dialect_name == "postgresql":
        sql = sql.replace("?", "%s")
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        rows = list(cursor.fetchall()) if cursor.description else []
        connection.commit()
        return rows
    finally:
        connection.close()


def chunk(first_step: int, n_steps: int, *, value: float | None = None) -> MetricChunk:
    """A metric chunk whose loss at step s is ``s`` (or ``value``) and accuracy ``s / 1e6``."""
    steps = np.arange(first_step, first_step + n_steps, dtype=np.float32)
    loss = steps if value is None else np.full(n_steps, value, dtype=np.float32)
    return MetricChunk(first_step=first_step, loss=loss, accuracy=steps / 1e6)


def new_run(repo: Repository, **overrides: Any) -> RunRecord:
    """Create a QUEUED training run with sensible defaults, overridden by keyword."""
    arguments: dict[str, Any] = {
        "kind": JobKind.TRAIN,
        "config": {"learning_rate": 0.01, "steps": 100},
        "seed": 7,
        "queue": "trainq",
        "max_attempts": 3,
    }
    arguments.update(overrides)
    return repo.create_run(**arguments)


def new_eval_job(repo: Repository, run_id: int, **overrides: Any) -> EvaluationJobRecord:
    """Create a QUEUED evaluation job of ``run_id``'s checkpoint 100 on the test split."""
    arguments: dict[str, Any] = {
        "run_id": run_id,
        "checkpoint_step": 100,
        "split": "test",
        "queue": "eval",
        "max_attempts": 3,
    }
    arguments.update(overrides)
    return repo.create_evaluation_job(**arguments)


def claim_eval(repo: Repository, job_id: int, owner: str = "worker-1") -> EvaluationJobRecord:
    """Claim an evaluation job that must be claimable."""
    claimed = repo.claim_evaluation_job(
        job_id, owner=owner, worker_host="host-a", lease_ttl_s=LEASE_TTL_S
    )
    assert claimed is not None
    return claimed


def claim(repo: Repository, run_id: int, owner: str = "worker-1") -> RunRecord:
    """Claim a run that must be claimable."""
    claimed = repo.claim_run(run_id, owner=owner, worker_host="host-a", lease_ttl_s=LEASE_TTL_S)
    assert claimed is not None
    return claimed


def count_rows(db: Database, table: str, run_id: int) -> int:
    """Rows of ``table`` belonging to ``run_id``."""
    return int(execute_sql(db, f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,))[0][0])
