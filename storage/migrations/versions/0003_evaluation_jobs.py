"""Evaluation jobs get their own table and id sequence; ``runs`` keeps training runs only.

Until now an evaluation job was a row of ``runs`` with ``kind='eval'``, so queueing evaluations
made training-run ids jump. Upgrade moves every such row to ``evaluation_jobs`` under the same id
(so a message already in the broker still names the right job), points ``evaluations.job_id`` at
the new table and deletes the moved rows from ``runs``; training runs keep their ids. Downgrade
moves them back under fresh ``runs`` ids (training runs may have taken the old ones meanwhile)
and renumbers ``evaluations.job_id`` to match.

Revision ID: 0003_evaluation_jobs
Revises: 0002_sweeps
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_evaluation_jobs"
down_revision: str | Sequence[str] | None = "0002_sweeps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a frozen snapshot.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)
_STATUSES = "'queued', 'running', 'succeeded', 'failed', 'cancelled'"
#: The job columns both tables share, copied as they are.
_JOB_COLUMNS = (
    "id",
    "status",
    "queue",
    "attempt",
    "max_attempts",
    "lease_owner",
    "lease_expires_at",
    "cancel_requested",
    "error",
    "worker_host",
    "device",
    "created_at",
    "started_at",
    "finished_at",
    "published_at",
)

_runs = sa.table(
    "runs",
    *(sa.column(name) for name in _JOB_COLUMNS),
    sa.column("kind", sa.String()),
    sa.column("name", sa.String()),
    sa.column("config", _JSON),
    sa.column("seed", sa.BigInteger()),
    sa.column("steps_done", sa.BigInteger()),
    sa.column("summary", _JSON),
    sa.column("tags", _JSON),
)
_jobs = sa.table(
    "evaluation_jobs",
    *(sa.column(name) for name in _JOB_COLUMNS),
    sa.column("run_id", sa.Integer()),
    sa.column("checkpoint_step", sa.BigInteger()),
    sa.column("split", sa.String()),
)
_evaluations = sa.table("evaluations", sa.column("id"), sa.column("job_id", sa.Integer()))


def upgrade() -> None:
    """Create ``evaluation_jobs``, move the eval rows of ``runs`` there, re-point results."""
    _create_evaluation_jobs()
    bind = op.get_bind()
    moved = _move_eval_rows(bind)
    # Results of eval rows that could not move (their trained run is gone) lose their job link.
    orphaned = sa.and_(_evaluations.c.job_id.is_not(None), _evaluations.c.job_id.not_in(moved))
    bind.execute(_evaluations.update().where(orphaned).values(job_id=None))
    _point_job_id_at("evaluation_jobs", "runs")
    bind.execute(_runs.delete().where(_runs.c.kind == "eval"))
    if bind.dialect.name == "postgresql" and moved:
        # Rows were inserted with explicit ids: the sequence must continue after them.
        bind.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('evaluation_jobs', 'id'), "
                "(SELECT max(id) FROM evaluation_jobs))"
            )
        )


def _create_evaluation_jobs() -> None:
    op.create_table(
        "evaluation_jobs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_step", sa.BigInteger(), nullable=True),
        sa.Column("split", sa.String(32), nullable=False),
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", _TIME, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker_host", sa.String(255), nullable=True),
        sa.Column("device", sa.String(200), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("published_at", _TIME, nullable=True),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name=op.f("ck_evaluation_jobs_status")),
        sa.CheckConstraint("attempt >= 0", name=op.f("ck_evaluation_jobs_attempt")),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_evaluation_jobs_max_attempts")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_evaluation_jobs_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_jobs")),
    )
    op.create_index(op.f("ix_evaluation_jobs_status"), "evaluation_jobs", ["status"])
    op.create_index(op.f("ix_evaluation_jobs_run_id"), "evaluation_jobs", ["run_id"])


def _move_eval_rows(bind: sa.Connection) -> list[int]:
    """Copy every eval row of ``runs`` whose trained run exists; returns the ids copied."""
    training_ids = set(bind.scalars(sa.select(_runs.c.id).where(_runs.c.kind != "eval")))
    rows = bind.execute(sa.select(_runs).where(_runs.c.kind == "eval").order_by(_runs.c.id))
    copies: list[dict[str, Any]] = []
    for row in rows.mappings():
        config = dict(row["config"] or {})
        run_id = config.get("run_id")
        if not isinstance(run_id, int) or run_id not in training_ids:
            continue
        step = config.get("checkpoint_step")
        copies.append(
            {
                **{name: row[name] for name in _JOB_COLUMNS},
                "run_id": run_id,
                "checkpoint_step": step if isinstance(step, int) else None,
                "split": str(config.get("split") or "test"),
            }
        )
    if copies:
        bind.execute(_jobs.insert(), copies)
    return [copy["id"] for copy in copies]


def _point_job_id_at(table: str, previous: str) -> None:
    """Make ``evaluations.job_id`` a foreign key to ``table`` (SQLite rebuilds the table)."""
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_constraint(f"fk_evaluations_job_id_{previous}", type_="foreignkey")
        batch.create_foreign_key(
            f"fk_evaluations_job_id_{table}", table, ["job_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    """Move evaluation jobs back into ``runs`` (new ids) and drop ``evaluation_jobs``."""
    bind = op.get_bind()
    linked = sa.select(_evaluations.c.id, _evaluations.c.job_id).where(
        _evaluations.c.job_id.is_not(None)
    )
    links = {int(evaluation): int(job) for evaluation, job in bind.execute(linked)}
    jobs = bind.execute(sa.select(_jobs).order_by(_jobs.c.id)).mappings().all()
    new_ids = {int(job["id"]): _insert_as_run(bind, job) for job in jobs}
    bind.execute(_evaluations.update().values(job_id=None))  # re-linked below, to the new ids
    _point_job_id_at("runs", "evaluation_jobs")
    for evaluation, job in links.items():
        where = _evaluations.c.id == evaluation
        bind.execute(_evaluations.update().where(where).values(job_id=new_ids[job]))
    op.drop_index(op.f("ix_evaluation_jobs_run_id"), table_name="evaluation_jobs")
    op.drop_index(op.f("ix_evaluation_jobs_status"), table_name="evaluation_jobs")
    op.drop_table("evaluation_jobs")


def _insert_as_run(bind: sa.Connection, job: sa.RowMapping) -> int:
    """Insert one evaluation job as an eval row of ``runs`` (as 0002 stored them); its new id."""
    step = job["checkpoint_step"]
    where = "newest" if step is None else f"step {step}"
    values = {name: job[name] for name in _JOB_COLUMNS if name != "id"}
    values |= {
        "kind": "eval",
        "name": f"eval run {job['run_id']} {where} {job['split']}",
        "config": {
            "run_id": job["run_id"],
            "checkpoint_step": step,
            "split": job["split"],
            "device": "auto",
        },
        "seed": 0,
        "steps_done": 0,
        "summary": None,
        "tags": {"run_id": str(job["run_id"])},
    }
    return int(bind.execute(_runs.insert().values(values).returning(_runs.c.id)).scalar_one())
