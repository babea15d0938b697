"""SQLAlchemy rows. They never leave storage: see ``record_mapping`` for what does.

Statuses and kinds are plain strings guarded by CHECK constraints rather than native enums, so a
new status is a one-line migration on both backends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.column_types import Blob, UTCDateTime, json_column_type
from storage.dataset_refs import MAX_DATASET_NAME_CHARS
from storage.records import AttemptOutcome, JobKind, RunStatus
from storage.validation import MAX_NAME_CHARS

#: Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_STATUSES = ", ".join(f"'{status.value}'" for status in RunStatus)
_KINDS = ", ".join(f"'{kind.value}'" for kind in JobKind)
_OUTCOMES = ", ".join(f"'{outcome.value}'" for outcome in AttemptOutcome)


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata and naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobColumns:
    """What every job has, training run or evaluation job: status, lease, attempts, times.

    The claim, lease, fencing and reconciliation code works on either table through these
    columns (``storage.job_tables``).
    """

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(200))
    # The fencing token: every write of a worker names the attempt it claimed.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    worker_host: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Run(JobColumns, Base):
    """A training run. (``kind`` is always ``'train'`` since migration 0003 moved evaluation
    jobs to ``evaluation_jobs``; dropping the column would rebuild ``runs`` on SQLite.)"""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint(f"kind IN ({_KINDS})", name="kind"),
        CheckConstraint("attempt >= 0", name="attempt"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        Index(None, "status"),
        Index(None, "created_at"),
        # Unique: two processes filling the same free slot cannot both create trial n.
        Index(None, "sweep_id", "trial", unique=True),
    )

    kind: Mapped[str] = mapped_column(String(16), default=JobKind.TRAIN.value)
    name: Mapped[str | None] = mapped_column(String(MAX_NAME_CHARS))
    config: Mapped[dict[str, Any]] = mapped_column(json_column_type())
    seed: Mapped[int] = mapped_column(BigInteger)
    steps_done: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[dict[str, Any] | None] = mapped_column(json_column_type())
    tags: Mapped[dict[str, str]] = mapped_column(json_column_type())
    # The sweep a trial belongs to and its number there; NULL for runs started on their own.
    # No foreign key: SQLite can only add one by rebuilding ``runs`` (see migration 0002).
    sweep_id: Mapped[int | None] = mapped_column(Integer)
    trial: Mapped[int | None] = mapped_column(Integer)
    # The dataset version the run trains on (its config's ``data_sha256``), copied out of the
    # JSON so that `runs list --data` and a version's usage are indexed look-ups. NULL: the
    # built-in Fashion-MNIST. No foreign key: a version removed with --force leaves its runs.
    data_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # What a person wrote about the run (`trainq runs note`); NULL: nothing.
    note: Mapped[str | None] = mapped_column(Text)
    # When the run was archived (`trainq runs archive`); NULL: not archived. Listings hide
    # archived runs unless asked for them.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EvaluationJob(JobColumns, Base):
    """A job that evaluates one checkpoint of a training run over one split.

    Its own table and id sequence: queueing evaluations never makes training-run ids jump. The
    result it stores is the ``evaluations`` row whose ``job_id`` is this id.
    """

    __tablename__ = "evaluation_jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("attempt >= 0", name="attempt"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        Index(None, "status"),
        Index(None, "run_id"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    # NULL: the newest checkpoint when the job runs (jobs queued before migration 0003 only).
    checkpoint_step: Mapped[int | None] = mapped_column(BigInteger)
    split: Mapped[str] = mapped_column(String(32))


class MetricChunkRow(Base):
    """Loss and accuracy of ``n_steps`` consecutive steps as little-endian float32 bytes."""

    __tablename__ = "metric_chunks"
    __table_args__ = (CheckConstraint("n_steps >= 1", name="n_steps"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    first_step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n_steps: Mapped[int] = mapped_column(Integer)
    loss: Mapped[bytes] = mapped_column(Blob())
    accuracy: Mapped[bytes] = mapped_column(Blob())


class CheckpointRow(Base):
    """A weight blob (``weights_codec`` format) of one run at one step."""

    __tablename__ = "checkpoints"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    weights: Mapped[bytes] = mapped_column(Blob())
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EvaluationRow(Base):
    """One checkpoint of one training run evaluated over a whole split.

    ``loss`` and ``accuracy`` are NULL when the value was NaN: SQLite cannot store a NaN REAL.
    """

    __tablename__ = "evaluations"
    __table_args__ = (Index(None, "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    checkpoint_step: Mapped[int] = mapped_column(BigInteger)
    split: Mapped[str] = mapped_column(String(32))
    loss: Mapped[float | None] = mapped_column(Double)
    accuracy: Mapped[float | None] = mapped_column(Double)
    per_class: Mapped[list[float | None]] = mapped_column(json_column_type())
    confusion: Mapped[list[list[int]]] = mapped_column(json_column_type())
    # The eval job that produced the row; unique, so a redelivered job cannot add a second one.
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("evaluation_jobs.id", ondelete="SET NULL"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SweepRow(Base):
    """A sweep: its file (validated, as JSON) and whether it still starts trials."""

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'cancelled')", name="status"),
        CheckConstraint("max_concurrent >= 1", name="max_concurrent"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(json_column_type())
    max_concurrent: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)  # given to every trial run
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the sweep was archived with its trials (`trainq sweep archive`); NULL: not archived.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SweepTrialRow(Base):
    """One planned trial: its parameters and full config; ``run_id`` once it was started."""

    __tablename__ = "sweep_trials"

    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    trial: Mapped[int] = mapped_column(Integer, primary_key=True)
    params: Mapped[dict[str, Any]] = mapped_column(json_column_type())
    config: Mapped[dict[str, Any]] = mapped_column(json_column_type())
    seed: Mapped[int] = mapped_column(BigInteger)
    queue: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(Integer)


class RungResultRow(Base):
    """A trial's validation metric at one ASHA rung and the decision taken with it."""

    __tablename__ = "rung_results"

    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    rung_step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    trial: Mapped[int] = mapped_column(Integer)
    objective: Mapped[float] = mapped_column(Double)
    continued: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ValidationMetricRow(Base):
    """Loss and accuracy over a run's held-out images at one checkpoint (NULL for NaN)."""

    __tablename__ = "validation_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    loss: Mapped[float | None] = mapped_column(Double)
    accuracy: Mapped[float | None] = mapped_column(Double)


class RunAttemptRow(Base):
    """One attempt of a training run: the worker that claimed it, and how it ended.

    ``number`` counts claims (1, 2, ...); ``attempt`` is the fencing token the claim got. They
    differ after a hand-back, which takes the token back: the next claim reuses it.
    """

    __tablename__ = "run_attempts"
    __table_args__ = (
        CheckConstraint("number >= 1", name="number"),
        CheckConstraint("attempt >= 1", name="attempt"),
        CheckConstraint(f"outcome IN ({_OUTCOMES})", name="outcome"),  # NULL: still running
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    worker_host: Mapped[str | None] = mapped_column(String(255))
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # NULL while the attempt runs; then an AttemptOutcome value.
    outcome: Mapped[str | None] = mapped_column(String(16))
    steps_at_start: Mapped[int] = mapped_column(BigInteger)
    steps_at_end: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class DatasetVersionRow(Base):
    """A dataset version's metadata; its canonical bytes are the ``dataset_chunks`` rows."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        CheckConstraint("feature_kind IN ('uint8', 'float32')", name="feature_kind"),
        CheckConstraint("version >= 1", name="version"),
        UniqueConstraint("name", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(MAX_DATASET_NAME_CHARS))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per name
    sha256: Mapped[str] = mapped_column(String(64), unique=True)  # the content hash
    feature_kind: Mapped[str] = mapped_column(String(16))
    features: Mapped[int] = mapped_column(Integer)
    classes: Mapped[int] = mapped_column(Integer)
    train_examples: Mapped[int] = mapped_column(BigInteger)
    test_examples: Mapped[int] = mapped_column(BigInteger)
    class_names: Mapped[list[str]] = mapped_column(json_column_type())
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    chunk_count: Mapped[int] = mapped_column(Integer)
    source: Mapped[dict[str, Any]] = mapped_column(json_column_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DatasetChunkRow(Base):
    """One piece (4 MiB) of a version's canonical bytes, with its own SHA-256."""

    __tablename__ = "dataset_chunks"

    sha256: Mapped[str] = mapped_column(
        ForeignKey("dataset_versions.sha256", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    chunk_sha256: Mapped[str] = mapped_column(String(64))
