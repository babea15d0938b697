"""Reconciler support: find runs whose message was lost or whose worker died, and move them on.

The broker may lose or duplicate messages; the database decides. A QUEUED run nobody picked up is
published again; a RUNNING run whose lease expired goes back to QUEUED while it has attempts
left, and ends FAILED (or CANCELLED, if a cancel was pending) when it has none.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from storage.attempt_log import close_attempt
from storage.models import EvaluationJob, Run
from storage.record_mapping import job_to_record
from storage.records import AttemptOutcome, JobKind, JobRecord, RunStatus
from storage.repository_base import JobRow, JobTable, RepositoryBase, job_table, load_job
from storage.trial_slots import lock_sweep_of, refill

_QUEUED = RunStatus.QUEUED.value
_RUNNING = RunStatus.RUNNING.value


class Reconciliation(RepositoryBase):
    """Queries and transitions for the reconciler."""

    def runs_to_redispatch(
        self,
        *,
        redispatch_after_s: float,
        now: datetime | None = None,
        limit: int | None = None,
    ) -> list[JobRecord]:
        """Jobs (training runs, then evaluation jobs) whose message must be published again.

        - QUEUED runs last published (or, never published, created) more than
          ``redispatch_after_s`` ago: the message was lost, or publishing failed. A run created
          a moment ago is left alone so the reconciler does not race the CLI's own publish.
        - RUNNING runs whose lease expired: the worker is gone; call :meth:`requeue_expired`.

        On PostgreSQL rows locked by a transaction in flight (a worker recording a chunk,
        another reconciler) are skipped (``FOR UPDATE SKIP LOCKED``). Times are compared on the
        database's clock (``now=None``), never this process's.
        """

        def candidates(session: Session) -> list[JobRecord]:
            moment = self._server_now(session, now)
            cutoff = moment - timedelta(seconds=redispatch_after_s)
            found: list[JobRecord] = []
            for table in (Run, EvaluationJob):
                left = None if limit is None else limit - len(found)
                statement = _lost_jobs(table, cutoff, moment).limit(left)
                found += [job_to_record(row) for row in session.scalars(statement)]
            return found

        # readonly only affects SQLite (DEFERRED begin; it ignores FOR UPDATE anyway).
        return self._db.run(candidates, readonly=True, idempotent=True)

    def requeue_expired(
        self, run_id: int, *, now: datetime | None = None, kind: JobKind = JobKind.TRAIN
    ) -> JobRecord:
        """Move a RUNNING run whose lease expired on; any other run is returned unchanged.

        With attempts left it goes back to QUEUED (lease cleared, ``published_at`` cleared: the
        caller publishes it and calls ``mark_published``). With a pending cancel it ends
        CANCELLED. Out of attempts it ends FAILED with an error naming the last host.

        The lease is judged on the database's clock (``now=None``), never this process's.

        Raises:
            RunNotFoundError: no run has this id.
        """
        table = job_table(kind)

        def requeue(session: Session) -> JobRecord:
            sweep = lock_sweep_of(session, run_id, kind)  # FAILED or CANCELLED ends a trial
            moment = self._server_now(session, now)
            statement = (
                select(table)
                .where(table.id == run_id, table.status == _RUNNING)
                .where(table.lease_expires_at < moment)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
            row = session.scalars(statement).one_or_none()
            if not isinstance(row, Run | EvaluationJob):  # not expired, or being written now
                return job_to_record(load_job(session, run_id, table))
            values = next_state_of_lost_run(row, moment)
            guarded = (
                update(table)
                .where(table.id == run_id, table.attempt == row.attempt)
                .where(table.status == _RUNNING, table.lease_expires_at < moment)
                .values(**values)
                .returning(table)
                .execution_options(populate_existing=True)
            )
            updated = session.scalars(guarded).one_or_none()
            if not isinstance(updated, Run | EvaluationJob):
                return job_to_record(load_job(session, run_id, table))
            close_attempt(session, updated, row.attempt, AttemptOutcome.LOST, moment)
            refill(session, sweep, updated, moment)
            return job_to_record(updated)

        return self._db.run(requeue, idempotent=True)

    def expire_lease(
        self,
        run_id: int,
        attempt: int,
        *,
        now: datetime | None = None,
        kind: JobKind = JobKind.TRAIN,
    ) -> bool:
        """End ``attempt``'s lease now, because its owner is known to be dead.

        ``trainq resume`` calls it when the owner was a process on this host that no longer
        exists, so that it need not wait out the TTL; :meth:`requeue_expired` then moves the run
        on as for any lost worker (the dead attempt counts against ``max_attempts``).

        Returns:
            True when the lease was ended; False when ``attempt`` no longer holds the run.
        """
        table = job_table(kind)

        def expire(session: Session) -> bool:
            # A microsecond before the database's now: requeue_expired compares with "<".
            ended = self._server_now(session, now) - timedelta(microseconds=1)
            statement = (
                update(table)
                .where(table.id == run_id, table.attempt == attempt, table.status == _RUNNING)
                .values(lease_expires_at=ended)
                .returning(table.id)
            )
            return session.execute(statement).first() is not None

        return self._db.run(expire, idempotent=True)


def _lost_jobs(table: JobTable, cutoff: datetime, now: datetime) -> Select[Any]:
    """Jobs of ``table`` whose message was lost (QUEUED too long) or whose lease expired."""
    return (
        select(table)
        .where(
            or_(
                and_(
                    table.status == _QUEUED,
                    func.coalesce(table.published_at, table.created_at) < cutoff,
                ),
                and_(table.status == _RUNNING, table.lease_expires_at < now),
            )
        )
        .order_by(table.id)
        .with_for_update(skip_locked=True)
    )


def next_state_of_lost_run(row: JobRow, now: datetime) -> dict[str, object]:
    """Where a RUNNING run goes when its attempt is lost: QUEUED, CANCELLED or FAILED."""
    cleared: dict[str, object] = {"lease_owner": None, "lease_expires_at": None}
    if row.cancel_requested:
        return {**cleared, "status": RunStatus.CANCELLED.value, "finished_at": now}
    if row.attempt < row.max_attempts:
        return {**cleared, "status": _QUEUED, "published_at": None}
    return {
        **cleared,
        "status": RunStatus.FAILED.value,
        "finished_at": now,
        "error": (
            f"worker lost {row.attempt} times (max_attempts={row.max_attempts}); "
            f"last host {row.worker_host or 'unknown'}"
        ),
    }
