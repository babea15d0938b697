"""Sweeps: sweeps, sweep_trials, rung_results, validation_metrics; runs.sweep_id and runs.trial.

Revision ID: 0002_sweeps
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_sweeps"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a frozen snapshot.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the sweep tables and tag runs with their sweep and trial number."""
    _create_sweeps()
    _create_sweep_trials()
    _create_rung_results()
    _create_validation_metrics()
    # Plain columns without a foreign key: SQLite can only add one by rebuilding ``runs``.
    op.add_column("runs", sa.Column("sweep_id", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("trial", sa.Integer(), nullable=True))
    # Unique: two processes filling the same free slot cannot both create trial n.
    op.create_index(op.f("ix_runs_sweep_id_trial"), "runs", ["sweep_id", "trial"], unique=True)


def _create_sweeps() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'cancelled')", name=op.f("ck_sweeps_status")
        ),
        sa.CheckConstraint("max_concurrent >= 1", name=op.f("ck_sweeps_max_concurrent")),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_sweeps_max_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )


def _create_sweep_trials() -> None:
    op.create_table(
        "sweep_trials",
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("trial", sa.Integer(), nullable=False),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweeps.id"],
            name=op.f("fk_sweep_trials_sweep_id_sweeps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "trial", name=op.f("pk_sweep_trials")),
    )


def _create_rung_results() -> None:
    op.create_table(
        "rung_results",
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("rung_step", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("trial", sa.Integer(), nullable=False),
        sa.Column("objective", sa.Double(), nullable=False),
        sa.Column("continued", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweeps.id"],
            name=op.f("fk_rung_results_sweep_id_sweeps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_rung_results_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sweep_id", "rung_step", "run_id", name=op.f("pk_rung_results")),
    )


def _create_validation_metrics() -> None:
    op.create_table(
        "validation_metrics",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("loss", sa.Double(), nullable=True),
        sa.Column("accuracy", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_validation_metrics_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_validation_metrics")),
    )


def downgrade() -> None:
    """Drop what upgrade created."""
    op.drop_index(op.f("ix_runs_sweep_id_trial"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("trial")
        batch.drop_column("sweep_id")
    op.drop_table("validation_metrics")
    op.drop_table("rung_results")
    op.drop_table("sweep_trials")
    op.drop_table("sweeps")
