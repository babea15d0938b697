"""Run management: a run's note, and archiving of runs and sweeps.

``runs.note`` holds free text a person wrote about the run (NULL: none). ``runs.archived_at`` and
``sweeps.archived_at`` say when the run or sweep was archived (NULL: not archived); archived rows
are hidden from listings unless asked for. Existing rows keep NULL in all three: nothing is
archived and nothing annotated. Names and tags already had columns (``runs.name``, ``runs.tags``).
Downgrade drops the three columns, and with them every note and archive mark.

Revision ID: 0006_run_management
Revises: 0005_datasets
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_run_management"
down_revision: str | Sequence[str] | None = "0005_datasets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a frozen snapshot.
_TIME = sa.DateTime(timezone=True)
_COLUMNS = (("runs", "note"), ("runs", "archived_at"), ("sweeps", "archived_at"))


def upgrade() -> None:
    """Add ``runs.note``, ``runs.archived_at`` and ``sweeps.archived_at`` (all NULL)."""
    op.add_column("runs", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("archived_at", _TIME, nullable=True))
    op.add_column("sweeps", sa.Column("archived_at", _TIME, nullable=True))


def downgrade() -> None:
    """Drop the three columns."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column in reversed(_COLUMNS):
        if sqlite:
            # SQLite's own DROP COLUMN (3.35+), not batch mode: batch rebuilds the table, and
            # dropping the old `runs` with foreign keys on would cascade into every table that
            # refers to it (see 0005's downgrade).
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
