"""The attempt history of training runs: ``run_attempts``, one row per claim.

Existing runs that were ever claimed (``attempt >= 1``) get one row for their latest attempt, from
what ``runs`` still knows of it: its host, lease owner, device, start (the run's first start, the
only one stored), end and outcome (the run's status when it finished; open while it runs; a QUEUED
run at attempt >= 1 lost or handed back the attempt, recorded as ``lost``). Earlier attempts were
never stored and stay unknown. Downgrade drops the table.

Revision ID: 0004_run_attempts
Revises: 0003_evaluation_jobs
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_run_attempts"
down_revision: str | Sequence[str] | None = "0003_evaluation_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a frozen snapshot.
_TIME = sa.DateTime(timezone=True)
_OUTCOMES = "'succeeded', 'failed', 'cancelled', 'handed back', 'lost'"
_RUN_COLUMNS = ("id", "status", "attempt", "worker_host", "lease_owner", "device", "error")
_runs = sa.table(
    "runs",
    *(sa.column(name) for name in _RUN_COLUMNS),
    sa.column("steps_done", sa.BigInteger()),
    sa.column("created_at", _TIME),
    sa.column("started_at", _TIME),
    sa.column("finished_at", _TIME),
)


def upgrade() -> None:
    """Create ``run_attempts`` and record the latest attempt of every claimed run."""
    attempts = op.create_table(
        "run_attempts",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_host", sa.String(255), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("device", sa.String(200), nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("steps_at_start", sa.BigInteger(), nullable=False),
        sa.Column("steps_at_end", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("number >= 1", name=op.f("ck_run_attempts_number")),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_run_attempts_attempt")),
        sa.CheckConstraint(f"outcome IN ({_OUTCOMES})", name=op.f("ck_run_attempts_outcome")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_attempts_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "number", name=op.f("pk_run_attempts")),
    )
    bind = op.get_bind()
    claimed = sa.select(_runs).where(_runs.c.attempt >= 1).order_by(_runs.c.id)
    rows = [_latest_attempt(run) for run in bind.execute(claimed).mappings()]
    if rows:
        bind.execute(attempts.insert(), rows)


def _latest_attempt(run: sa.RowMapping) -> dict[str, object]:
    """The ``run_attempts`` row of a run's latest attempt, as far as ``runs`` knows it."""
    status = run["status"]
    ended = status in ("succeeded", "failed", "cancelled", "queued")
    return {
        "run_id": run["id"],
        "number": 1,
        "attempt": run["attempt"],
        "worker_host": run["worker_host"],
        "lease_owner": run["lease_owner"],
        "device": run["device"],
        "started_at": run["started_at"] or run["created_at"],
        "ended_at": (run["finished_at"] or run["started_at"] or run["created_at"])
        if ended
        else None,
        "outcome": ("lost" if status == "queued" else status) if ended else None,
        "steps_at_start": 0,
        "steps_at_end": run["steps_done"] if ended else None,
        "error": run["error"] if ended else None,
    }


def downgrade() -> None:
    """Drop ``run_attempts``."""
    op.drop_table("run_attempts")
