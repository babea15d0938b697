"""A sweep's slots: the transaction that frees one also starts the next trial.

A sweep runs at most ``max_concurrent`` trials at once (QUEUED or RUNNING). Every transition that
ends a trial (``finish_run``, ``requeue_expired`` or ``release_lost_run`` out of attempts or
with a pending cancel, ``hand_back_run`` with a pending cancel, ``request_cancel`` of a QUEUED
trial) calls :func:`lock_sweep_of` before it touches the run row and :func:`refill` after it, in
its own transaction: the next trials' runs are created QUEUED (and the sweep marked SUCCEEDED
when nothing is left) in the very commit that records the slot as free. Publishing them to the
broker can only come after that commit: the caller takes them with
``SweepStore.take_unpublished_trials``; if it dies first, the reconciler does.

Lock order is always the sweep row, then run rows (``decide_rung`` and ``cancel_sweep`` take the
same order), so these transactions cannot deadlock on PostgreSQL; SQLite serialises writers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.dataset_refs import data_sha256_of
from storage.errors import SweepNotFoundError
from storage.models import EvaluationJob, Run, SweepRow, SweepTrialRow
from storage.record_mapping import run_to_record
from storage.records import JobKind, RunRecord, RunStatus
from storage.sweep_records import SweepStatus
from storage.validation import MAX_ID

_ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def load_sweep(session: Session, sweep_id: int, *, for_update: bool = False) -> SweepRow:
    """Load one ``sweeps`` row (locked with ``for_update`` on PostgreSQL).

    Raises:
        SweepNotFoundError: no sweep has this id.
    """
    statement = (
        select(SweepRow).where(SweepRow.id == sweep_id).execution_options(populate_existing=True)
    )
    if for_update:
        statement = statement.with_for_update()
    row = session.scalars(statement).one_or_none()
    if row is None:
        raise SweepNotFoundError(f"no sweep with id {sweep_id}; `trainq sweep list` shows them")
    return row


def lock_sweep_of(session: Session, run_id: int, kind: JobKind = JobKind.TRAIN) -> SweepRow | None:
    """Lock the sweep of run ``run_id`` before the run row is locked.

    None for a plain run, and for an evaluation job (``kind`` eval): only training runs are trials.
    """
    if JobKind(kind) is not JobKind.TRAIN or not 1 <= run_id <= MAX_ID:
        return None  # no such run; the caller reports it (a driver would overflow on the id)
    sweep_id = session.execute(select(Run.sweep_id).where(Run.id == run_id)).scalar_one_or_none()
    return None if sweep_id is None else load_sweep(session, sweep_id, for_update=True)


def refill(
    session: Session, sweep: SweepRow | None, run: Run | EvaluationJob, now: datetime
) -> None:
    """After a transition of ``run``: if it ended a trial of ``sweep``, start the next ones.

    ``sweep`` is None for a plain run or an evaluation job (see :func:`lock_sweep_of`).
    """
    if sweep is not None and RunStatus(run.status).terminal:
        session.flush()  # the ended run must not count as active
        fill_free_slots(session, sweep, now)


def fill_free_slots(session: Session, sweep: SweepRow, now: datetime) -> list[RunRecord]:
    """Create QUEUED runs for as many planned trials as ``sweep`` has free slots.

    ``sweep`` must be locked by this transaction. Marks it SUCCEEDED once no trial is left to
    start and none is active.

    Returns:
        The runs created (to publish after the commit).
    """
    if sweep.status != SweepStatus.RUNNING.value:
        return []
    active = _count_active(session, sweep.id)
    pending = list(
        session.scalars(
            select(SweepTrialRow)
            .where(SweepTrialRow.sweep_id == sweep.id, SweepTrialRow.run_id.is_(None))
            .order_by(SweepTrialRow.trial)
            .limit(max(sweep.max_concurrent - active, 0))
        )
    )
    created = [_create_trial_run(session, sweep, planned, now) for planned in pending]
    if not created and active == 0 and not _has_pending(session, sweep.id):
        sweep.status, sweep.finished_at = SweepStatus.SUCCEEDED.value, now
    return created


def _count_active(session: Session, sweep_id: int) -> int:
    statement = select(func.count()).where(Run.sweep_id == sweep_id, Run.status.in_(_ACTIVE))
    return int(session.execute(statement).scalar_one())


def _has_pending(session: Session, sweep_id: int) -> bool:
    statement = select(SweepTrialRow.trial).where(
        SweepTrialRow.sweep_id == sweep_id, SweepTrialRow.run_id.is_(None)
    )
    return session.execute(statement.limit(1)).first() is not None


def _create_trial_run(
    session: Session, sweep: SweepRow, planned: SweepTrialRow, now: datetime
) -> RunRecord:
    prefix = sweep.name or f"sweep {sweep.id}"
    row = Run(
        kind=JobKind.TRAIN.value,
        name=f"{prefix} #{planned.trial}"[:200],
        status=RunStatus.QUEUED.value,
        config=dict(planned.config),
        seed=planned.seed,
        queue=planned.queue,
        attempt=0,
        max_attempts=sweep.max_attempts,
        cancel_requested=False,
        steps_done=0,
        created_at=now,
        tags={"sweep": str(sweep.id)},
        sweep_id=sweep.id,
        trial=planned.trial,
        data_sha256=data_sha256_of(planned.config),  # checked when the sweep was stored
    )
    session.add(row)
    session.flush()
    planned.run_id = row.id
    return run_to_record(row)
