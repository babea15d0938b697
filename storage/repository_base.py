"""What every part of the repository shares: the database, the clock, and the row guards."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Executable, Update, literal, select, update
from sqlalchemy.orm import Session

from storage.column_types import UTCDateTime
from storage.database import Database
from storage.errors import (
    EvaluationJobNotFoundError,
    InvalidValueError,
    NotFoundError,
    RunNotFoundError,
    StaleAttemptError,
)
from storage.models import Base, EvaluationJob, Run
from storage.records import JobKind, RunStatus
from storage.server_clock import server_now, server_time_after
from storage.validation import MAX_ID


def utc_now() -> datetime:
    """The current time, tz-aware UTC: the repository's default clock."""
    return datetime.now(UTC)


class RepositoryBase:
    """Holds the database and the clock; the repository's parts build on it."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        """Use ``db`` for every operation.

        Args:
            db: the database (its schema must be at head; see ``Database.ensure_schema``).
            clock: ``None`` (the default): the database server's clock (``storage.server_clock``)
                gives every time that decides who owns a job (lease ends, claims, requeues,
                redispatch) and every time written with a job's state, so workers' clocks may
                be wrong without harm. Or a function returning "now" as a tz-aware datetime,
                used for all of them instead: tests move a fake one.
        """
        self._db = db
        self._clock = clock

    def _now(self, now: datetime | None = None) -> datetime:
        """``now``, else the clock, else this process's time: for times only shown to people
        (an evaluation's or a dataset's ``created_at``), never for a lease."""
        return _checked(now if now is not None else (self._clock or utc_now)())

    def _server_now(self, session: Session, now: datetime | None = None) -> datetime:
        """The transaction's "now": ``now`` if given (tests), else the fake clock, else the
        database server's time, read in ``session`` (on PostgreSQL the transaction's start)."""
        if now is not None or self._clock is not None:
            return self._now(now)
        return _checked(session.execute(select(server_now())).scalar_one())

    def _server_now_sql(self) -> ColumnElement[datetime]:
        """:meth:`_server_now` as SQL, for a statement that needs no other read first."""
        if self._clock is not None:
            return literal(self._now(), UTCDateTime())
        return server_now()

    def _lease_end_sql(self, lease_ttl_s: float) -> ColumnElement[datetime]:
        """``lease_ttl_s`` after :meth:`_server_now_sql`: a lease's end, computed by the server.

        Raises:
            InvalidValueError: the TTL is not a positive finite number of seconds.
        """
        if self._clock is not None:
            return literal(lease_expiry(self._now(), lease_ttl_s), UTCDateTime())
        check_lease_ttl(lease_ttl_s)
        return server_time_after(lease_ttl_s)


def _checked(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidValueError(f"naive datetime {moment!r}: pass a tz-aware UTC time")
    return moment.astimezone(UTC)


def check_lease_ttl(lease_ttl_s: float) -> None:
    """Refuse a TTL that is not positive and finite.

    Raises:
        InvalidValueError: the TTL is not a positive finite number of seconds.
    """
    if not (math.isfinite(lease_ttl_s) and lease_ttl_s > 0):
        raise InvalidValueError(f"lease_ttl_s={lease_ttl_s!r} must be a positive number")


def lease_expiry(now: datetime, lease_ttl_s: float) -> datetime:
    """``now + lease_ttl_s``, refusing a TTL that is not positive and finite.

    Raises:
        InvalidValueError: the TTL is not a positive finite number of seconds.
    """
    check_lease_ttl(lease_ttl_s)
    return now + timedelta(seconds=lease_ttl_s)


#: A job table: training runs or evaluation jobs share the job columns (``JobColumns``).
JobTable = type[Run] | type[EvaluationJob]
JobRow = Run | EvaluationJob


def job_table(kind: JobKind) -> JobTable:
    """The table that holds jobs of ``kind``."""
    return EvaluationJob if JobKind(kind) is JobKind.EVAL else Run


def load_run(session: Session, run_id: int, *, for_update: bool = False) -> Run:
    """Load one ``runs`` row.

    Raises:
        RunNotFoundError: no run has this id.
    """
    row = load_job(session, run_id, Run, for_update=for_update)
    assert isinstance(row, Run)
    return row


def load_job(session: Session, job_id: int, table: JobTable, *, for_update: bool = False) -> JobRow:
    """Load one job row of ``table``.

    Raises:
        RunNotFoundError: ``table`` is ``runs`` and no run has this id.
        EvaluationJobNotFoundError: ``table`` is ``evaluation_jobs`` and no job has this id.
    """
    row = None
    # Out of range: no such row can exist, and a driver would fail on an id past 64 bits.
    if 1 <= job_id <= MAX_ID:
        statement = (
            select(table).where(table.id == job_id).execution_options(populate_existing=True)
        )
        if for_update:
            statement = statement.with_for_update()
        row = session.scalars(statement).one_or_none()
    if row is None:
        raise job_not_found(job_id, table)
    return cast(JobRow, row)


def job_not_found(job_id: int, table: JobTable) -> NotFoundError:
    """The error for a job id that ``table`` does not hold, saying where the ids are listed."""
    if table is EvaluationJob:
        return EvaluationJobNotFoundError(
            f"no evaluation job with id {job_id}; `trainq runs list --evals` shows them"
        )
    return RunNotFoundError(f"no run with id {job_id}; `trainq runs list` shows the runs")


def _fenced(run_id: int, attempt: int, table: JobTable) -> Update:
    """An UPDATE of the job that matches only while ``attempt`` still owns it and it is RUNNING."""
    return update(table).where(
        table.id == run_id, table.attempt == attempt, table.status == RunStatus.RUNNING.value
    )


def fenced_update(
    session: Session,
    run_id: int,
    attempt: int,
    values: Mapping[str, Any],
    table: JobTable = Run,
) -> JobRow:
    """Update the job only if ``attempt`` still owns it (same attempt, status RUNNING).

    This UPDATE comes first in every fenced transaction: on PostgreSQL it takes the row lock, so
    a concurrent claim by a newer attempt waits for this transaction or makes it match nothing.

    Raises:
        StaleAttemptError: the job moved on (another attempt, or no longer RUNNING).
        RunNotFoundError: no run has this id (EvaluationJobNotFoundError for an eval job).
    """
    statement = (
        _fenced(run_id, attempt, table)
        .values(**values)
        .returning(table)
        .execution_options(populate_existing=True)
    )
    row = session.scalars(statement).one_or_none()
    if row is None:
        raise stale_attempt(session, run_id, attempt, table)
    return cast(JobRow, row)


class Renewal(NamedTuple):
    """What a lease renewal's fenced UPDATE returned."""

    #: Whether a cancel was requested for the job.
    cancel_requested: bool
    #: The lease's new end, as the database computed it.
    lease_expires_at: datetime


def fenced_renewal(
    session: Session,
    run_id: int,
    attempt: int,
    lease_end: ColumnElement[datetime],
    values: Mapping[str, Any] | None = None,
    table: JobTable = Run,
) -> Renewal:
    """Like :func:`fenced_update`: set the lease's end to ``lease_end`` (SQL, evaluated by the
    database) and ``values``, and return only what the hot path needs.

    Raises:
        StaleAttemptError: the job moved on (another attempt, or no longer RUNNING).
        RunNotFoundError: no run has this id (EvaluationJobNotFoundError for an eval job).
    """
    statement = (
        _fenced(run_id, attempt, table)
        .values(lease_expires_at=lease_end, **(values or {}))
        .returning(table.cancel_requested, table.lease_expires_at)
    )
    returned = session.execute(statement).one_or_none()
    if returned is None:
        raise stale_attempt(session, run_id, attempt, table)
    cancel_requested, lease_expires_at = returned
    assert lease_expires_at is not None  # just set, on a RUNNING job
    return Renewal(bool(cancel_requested), lease_expires_at)


def stale_attempt(
    session: Session, run_id: int, attempt: int, table: JobTable = Run
) -> StaleAttemptError:
    """Describe why ``attempt`` no longer owns the job (raises if the job does not exist)."""
    row = load_job(session, run_id, table)
    what, noun = ("evaluation job", "job") if table is EvaluationJob else ("run", "run")
    return StaleAttemptError(
        f"{what} {run_id}: attempt {attempt} no longer owns the {noun} (it is at attempt "
        f"{row.attempt}, status {row.status}); this worker must stop writing to it"
    )


def insert_ignoring_duplicates(
    session: Session, model: type[Base], values: Mapping[str, Any]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on either backend.

    Returns:
        True when a row was inserted, False when one with the same key already existed.
    """
    # Imported here: the PostgreSQL package loads every PostgreSQL driver's dialect, which an
    # embedded (SQLite) process never needs.
    key = list(model.__table__.primary_key)
    # RETURNING, not rowcount: psycopg reports -1 for this statement as SQLAlchemy compiles it.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Executable = (
            postgresql.insert(model).values(**values).on_conflict_do_nothing().returning(*key)
        )
    else:
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(model).values(**values).on_conflict_do_nothing().returning(*key)
    return session.execute(statement).first() is not None
