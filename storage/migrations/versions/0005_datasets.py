"""Datasets: dataset_versions and their dataset_chunks; runs.data_sha256.

A version's canonical bytes are stored in the database, chunked and checksummed like weight blobs,
because the database is the one store every worker of a cluster already reaches. Runs made before
this revision trained on the built-in Fashion-MNIST: their ``data_sha256`` stays NULL. Downgrade
drops the tables and the column (and with them every stored version).

Revision ID: 0005_datasets
Revises: 0004_run_attempts
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_datasets"
down_revision: str | Sequence[str] | None = "0004_run_attempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a frozen snapshot.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the dataset tables and give runs the hash of the version they train on."""
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("feature_kind", sa.String(16), nullable=False),
        sa.Column("features", sa.Integer(), nullable=False),
        sa.Column("classes", sa.Integer(), nullable=False),
        sa.Column("train_examples", sa.BigInteger(), nullable=False),
        sa.Column("test_examples", sa.BigInteger(), nullable=False),
        sa.Column("class_names", _JSON, nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("source", _JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.CheckConstraint(
            "feature_kind IN ('uint8', 'float32')", name=op.f("ck_dataset_versions_feature_kind")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_dataset_versions_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint("sha256", name=op.f("uq_dataset_versions_sha256")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_dataset_versions_name_version")),
    )
    op.create_table(
        "dataset_chunks",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("chunk_sha256", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["dataset_versions.sha256"],
            name=op.f("fk_dataset_chunks_sha256_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sha256", "chunk_index", name=op.f("pk_dataset_chunks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # TOAST's default pglz compression made storing Fashion-MNIST take 18 s instead of
        # 1.4 s, to save a third of its 53 MiB (bench/data_bench.py). EXTERNAL keeps the chunks
        # out of line, uncompressed.
        op.execute("ALTER TABLE dataset_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    # No foreign key: SQLite can only add one by rebuilding ``runs`` (and a version removed
    # with --force leaves its runs as they are).
    op.add_column("runs", sa.Column("data_sha256", sa.String(64), nullable=True))
    op.create_index(op.f("ix_runs_data_sha256"), "runs", ["data_sha256"])


def downgrade() -> None:
    """Drop the dataset tables and ``runs.data_sha256``."""
    op.drop_index(op.f("ix_runs_data_sha256"), table_name="runs")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's own DROP COLUMN (3.35+), not batch mode: batch rebuilds `runs`, and dropping
        # the old table with foreign keys on would cascade into evaluation_jobs and evaluations.
        op.execute("ALTER TABLE runs DROP COLUMN data_sha256")
    else:
        op.drop_column("runs", "data_sha256")
    op.drop_table("dataset_chunks")
    op.drop_table("dataset_versions")
