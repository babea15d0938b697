"""The attempt history of training runs: one ``run_attempts`` row per claim.

The rows are written inside the transaction of the transition that starts or ends an attempt
(claim; finish, hand-back, lost-process release, lease-expiry requeue), after its fenced UPDATE
succeeded, so the history never disagrees with the run. Both writes are idempotent: the claim is
never retried (it inserts once), and closing only touches a row that is still open, so a repeated
finish changes nothing. Evaluation jobs have no history (their table is separate and short-lived).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import EvaluationJob, Run, RunAttemptRow
from storage.record_mapping import attempt_to_record
from storage.records import AttemptOutcome, AttemptRecord, RunStatus
from storage.repository_base import RepositoryBase, load_run

#: The outcome of the attempt a terminal ``finish_run`` ends.
OUTCOME_OF_STATUS = {
    RunStatus.SUCCEEDED.value: AttemptOutcome.SUCCEEDED,
    RunStatus.FAILED.value: AttemptOutcome.FAILED,
    RunStatus.CANCELLED.value: AttemptOutcome.CANCELLED,
}


def open_attempt(session: Session, row: Run | EvaluationJob, now: datetime) -> None:
    """Record the attempt a claim just took (``row`` as the claim's UPDATE returned it).

    The claim's UPDATE holds the run's row lock (PostgreSQL) or the database's write lock
    (SQLite) until commit, so no other claim of this run can number its attempt concurrently.
    """
    if not isinstance(row, Run):
        return
    # A claim may take a RUNNING run whose lease expired before the reconciler requeued it: the
    # attempt it takes over was lost.
    session.execute(
        update(RunAttemptRow)
        .where(RunAttemptRow.run_id == row.id, RunAttemptRow.ended_at.is_(None))
        .values(ended_at=now, outcome=AttemptOutcome.LOST.value, steps_at_end=row.steps_done)
        .execution_options(synchronize_session=False)
    )
    latest = select(func.max(RunAttemptRow.number)).where(RunAttemptRow.run_id == row.id)
    number = (session.scalar(latest) or 0) + 1
    session.add(
        RunAttemptRow(
            run_id=row.id,
            number=number,
            attempt=row.attempt,
            worker_host=row.worker_host,
            lease_owner=row.lease_owner,
            started_at=now,
            steps_at_start=row.steps_done,
        )
    )
    session.flush()


def close_attempt(
    session: Session,
    row: Run | EvaluationJob,
    attempt: int,
    outcome: AttemptOutcome,
    now: datetime,
    *,
    device: str | None = None,
) -> None:
    """End ``row``'s open attempt ``attempt`` with ``outcome``; a closed one is left as it is.

    ``row`` is the run after the transition (its ``steps_done`` and ``error`` are copied).
    """
    if not isinstance(row, Run):
        return
    values: dict[str, object] = {
        "ended_at": now,
        "outcome": outcome.value,
        "steps_at_end": row.steps_done,
        "error": row.error,
    }
    if device is not None:
        values["device"] = device
    session.execute(
        update(RunAttemptRow)
        .where(
            RunAttemptRow.run_id == row.id,
            RunAttemptRow.attempt == attempt,
            RunAttemptRow.ended_at.is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def record_attempt_device(session: Session, run_id: int, attempt: int, device: str) -> None:
    """Set the device of run ``run_id``'s open attempt ``attempt`` (known at its first chunk)."""
    session.execute(
        update(RunAttemptRow)
        .where(
            RunAttemptRow.run_id == run_id,
            RunAttemptRow.attempt == attempt,
            RunAttemptRow.ended_at.is_(None),
        )
        .values(device=device)
        .execution_options(synchronize_session=False)
    )


class AttemptLog(RepositoryBase):
    """Reading the attempt history of a run."""

    def list_attempts(self, run_id: int) -> list[AttemptRecord]:
        """The attempts of training run ``run_id``, first claim first (empty if never claimed).

        Runs claimed before migration 0004 have one row for their latest attempt only.

        Raises:
            RunNotFoundError: no run has this id.
        """

        def read(session: Session) -> list[AttemptRecord]:
            load_run(session, run_id)
            statement = (
                select(RunAttemptRow)
                .where(RunAttemptRow.run_id == run_id)
                .order_by(RunAttemptRow.number)
            )
            return [attempt_to_record(row) for row in session.scalars(statement)]

        return self._db.run(read, readonly=True, idempotent=True)
