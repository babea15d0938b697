"""Giving a running run back before its lease expires: a graceful hand-back, or a lost job process.

Waiting for a lease to expire is the only way to recover from a worker that vanished without a
word (its machine died). When the worker is still there to say what happened, it says so at once
and the run is claimable immediately:

- :meth:`RunRelease.hand_back_run`: the job itself stops at a chunk boundary because its worker
  is shutting down. It stores a checkpoint there and puts the run back to QUEUED **without
  spending the attempt** (``attempt`` goes back by one): being stopped by an operator is not a
  failure of the run, and ``max_attempts`` bounds failures.
- :meth:`RunRelease.release_lost_run`: the worker's main process saw the job process die (SIGKILL,
  out of memory). The attempt **is** spent, exactly as if its lease had expired: a run that kills
  its process every time must end FAILED after ``max_attempts``.

Both are fenced by the attempt *and* the lease owner (host, job process id and delivery), so
only the holder of the lease can release it. Taking the attempt number back on a hand-back means
the next claim reuses it; that is safe because the job hands back as its very last write, after
its lease heartbeat has stopped: no write of the old holder can follow the release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.attempt_log import close_attempt
from storage.checkpoint_store import store_checkpoint
from storage.errors import InvalidValueError, StaleAttemptError
from storage.models import EvaluationJob, Run
from storage.reconciliation import next_state_of_lost_run
from storage.record_mapping import job_to_record
from storage.records import AttemptOutcome, JobKind, JobRecord, RunStatus
from storage.repository_base import JobTable, RepositoryBase, job_table, load_job
from storage.trial_slots import lock_sweep_of, refill

if TYPE_CHECKING:
    import numpy as np

_QUEUED = RunStatus.QUEUED.value
_RUNNING = RunStatus.RUNNING.value


class RunRelease(RepositoryBase):
    """Releasing a run's lease early, by its holder."""

    def hand_back_run(
        self,
        run_id: int,
        attempt: int,
        *,
        owner: str,
        checkpoint: Mapping[str, np.ndarray] | None = None,
        checkpoint_step: int = 0,
        kind: JobKind = JobKind.TRAIN,
    ) -> JobRecord:
        """Give a running run back to the queue, keeping its work and its attempt budget.

        In one transaction: ``checkpoint`` (if given) is stored at ``checkpoint_step`` (kept if
        one is already there), and the run goes RUNNING → QUEUED with its lease and
        ``published_at`` cleared and ``attempt`` taken back by one; the caller publishes it
        again. A run with a pending cancel ends CANCELLED instead. Repeating the call after it
        committed returns the handed-back run.

        The step is explicit, not ``steps_done``: an attempt resumed from an older checkpoint
        than a lost attempt reached stops below ``steps_done``.

        Raises:
            InvalidValueError: ``checkpoint_step`` is not in 1..``steps_done`` (its metrics must
                be recorded already); nothing was written.
            StaleAttemptError: ``attempt`` (held by ``owner``) no longer owns the run; nothing
                was written.
            RunNotFoundError: no run has this id.
        """
        table = job_table(kind)
        owned = (
            table.id == run_id,
            table.attempt == attempt,
            table.status == _RUNNING,
            table.lease_owner == owner,
        )

        def hand_back(session: Session) -> JobRecord:
            sweep = lock_sweep_of(session, run_id, kind)  # a pending cancel ends a trial: refill
            now = self._server_now(session)
            row = session.scalars(
                select(table)
                .where(*owned)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one_or_none()
            if not isinstance(row, Run | EvaluationJob):
                return _already_handed_back(session, table, run_id, attempt)
            if checkpoint is not None and isinstance(row, Run):
                if not 0 < checkpoint_step <= row.steps_done:
                    raise InvalidValueError(
                        f"run {run_id}: checkpoint step {checkpoint_step} must be in "
                        f"1..{row.steps_done} (the steps whose metrics are recorded)"
                    )
                store_checkpoint(session, run_id, checkpoint_step, checkpoint, now)
            values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
            if row.cancel_requested:
                values |= {"status": RunStatus.CANCELLED.value, "finished_at": now}
            else:
                values |= {"status": _QUEUED, "published_at": None, "attempt": attempt - 1}
            statement = (
                update(table)
                .where(*owned)
                .values(**values)
                .returning(table)
                .execution_options(populate_existing=True)
            )
            updated = session.scalars(statement).one()
            assert isinstance(updated, Run | EvaluationJob)
            handed_back = updated.status == _QUEUED
            outcome = AttemptOutcome.HANDED_BACK if handed_back else AttemptOutcome.CANCELLED
            close_attempt(session, updated, attempt, outcome, now)
            refill(session, sweep, updated, now)
            return job_to_record(updated)

        return self._db.run(hand_back, idempotent=True)

    def release_lost_run(
        self,
        run_id: int,
        *,
        owner: str,
        kind: JobKind = JobKind.TRAIN,
        spend_attempt: bool = True,
    ) -> JobRecord | None:
        """Move on a RUNNING run whose job process (the lease ``owner``) is known to be dead.

        The run is treated as if its lease had just expired: QUEUED with attempts left (lease
        cleared, ``published_at`` set to now: the caller puts the job's message back in the
        queue or publishes it), CANCELLED with a pending cancel, FAILED when out of attempts.
        With ``spend_attempt`` off (the worker killed the process itself, e.g. after losing the
        broker: not the run's fault) it goes back to QUEUED with its attempt given back, as a
        hand-back does; safe because the dead process can write nothing more.

        Returns:
            The run after the transition, or None when ``owner`` does not hold it (it finished,
            or was already released or taken over).

        Raises:
            RunNotFoundError: no run has this id.
        """
        table = job_table(kind)

        def release(session: Session) -> JobRecord | None:
            sweep = lock_sweep_of(session, run_id, kind)  # out of attempts ends a trial: refill
            # The server's time: ``published_at`` is compared with the reconciler's now.
            now = self._server_now(session)
            row = session.scalars(
                select(table)
                .where(table.id == run_id, table.status == _RUNNING, table.lease_owner == owner)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one_or_none()
            if not isinstance(row, Run | EvaluationJob):
                load_job(session, run_id, table)  # a NotFoundError for a bad id
                return None
            attempt = row.attempt  # the UPDATE below refreshes ``row``
            values = next_state_of_lost_run(row, now)
            refund = not spend_attempt and not row.cancel_requested
            if refund:
                values = {"lease_owner": None, "lease_expires_at": None, "status": _QUEUED}
                values["attempt"] = attempt - 1
            if values["status"] == _QUEUED:
                values["published_at"] = now  # the caller's message goes back to the queue
            statement = (
                update(table)
                .where(table.id == run_id, table.attempt == attempt)
                .where(table.lease_owner == owner, table.status == _RUNNING)
                .values(**values)
                .returning(table)
                .execution_options(populate_existing=True)
            )
            updated = session.scalars(statement).one_or_none()
            if not isinstance(updated, Run | EvaluationJob):
                return None
            outcome = AttemptOutcome.HANDED_BACK if refund else AttemptOutcome.LOST
            close_attempt(session, updated, attempt, outcome, now)
            refill(session, sweep, updated, now)
            return job_to_record(updated)

        return self._db.run(release, idempotent=True)


def _already_handed_back(session: Session, table: JobTable, run_id: int, attempt: int) -> JobRecord:
    """The job as a committed hand-back left it, or StaleAttemptError if it moved on otherwise."""
    current = load_job(session, run_id, table)
    handed_back = current.status == _QUEUED and current.attempt == attempt - 1
    cancelled = current.status == RunStatus.CANCELLED.value and current.attempt == attempt
    if (handed_back or cancelled) and current.lease_owner is None:
        return job_to_record(current)  # a retry after a commit whose reply was lost
    raise StaleAttemptError(
        f"run {run_id}: attempt {attempt} no longer owns the run (it is at attempt "
        f"{current.attempt}, status {current.status}); it cannot be handed back"
    )
