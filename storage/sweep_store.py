"""Sweeps and their trials: create a sweep with its planned trials, fill free slots, cancel.

No central process runs a sweep. Whoever may have freed a slot (a trial's job as it ends, the
reconciler in every worker, the CLI that starts the sweep) calls :meth:`SweepStore.fill_slots`:
one transaction that locks the sweep row, counts the trials still QUEUED or RUNNING, and turns as
many planned trials into QUEUED runs as ``max_concurrent`` allows. The caller publishes those
runs after the commit; if it dies first, they are QUEUED runs never published, which the
reconciler publishes. A unique index on ``runs (sweep_id, trial)`` backs the lock up: a trial is
created once, whoever races for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.errors import InvalidValueError, SweepNotFoundError
from storage.models import Run, SweepRow, SweepTrialRow
from storage.record_mapping import (
    check_finite_json,
    run_to_record,
    sweep_to_record,
    sweep_trial_to_record,
)
from storage.records import JobKind, RunRecord, RunStatus
from storage.repository_base import RepositoryBase
from storage.sweep_records import PlannedTrial, SweepRecord, SweepStatus, SweepTrial

_ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


class SweepStore(RepositoryBase):
    """Sweeps, their planned trials, and the runs that carry them out."""

    def create_sweep(
        self,
        *,
        name: str | None,
        spec: dict[str, Any],
        trials: Sequence[PlannedTrial],
        max_concurrent: int,
        max_attempts: int,
    ) -> SweepRecord:
        """Store a sweep and all its planned trials (no run yet: see :meth:`fill_slots`).

        Raises:
            InvalidValueError: no trial, ``max_concurrent``/``max_attempts`` below 1, or NaN
                or infinity in the spec or a trial's config.
        """
        if not trials:
            raise InvalidValueError("a sweep needs at least one trial")
        if max_concurrent < 1 or max_attempts < 1:
            raise InvalidValueError("max_concurrent and max_attempts must be at least 1")
        check_finite_json(spec, "sweep spec")
        for planned in trials:
            check_finite_json(planned.config, "trial config")
        now = self._now()

        def insert(session: Session) -> SweepRecord:
            row = SweepRow(
                name=name,
                status=SweepStatus.RUNNING.value,
                spec=dict(spec),
                max_concurrent=max_concurrent,
                max_attempts=max_attempts,
                created_at=now,
            )
            session.add(row)
            session.flush()
            session.add_all(
                SweepTrialRow(
                    sweep_id=row.id,
                    trial=number,
                    params=dict(planned.params),
                    config=dict(planned.config),
                    seed=planned.seed,
                    queue=planned.queue,
                )
                for number, planned in enumerate(trials)
            )
            return sweep_to_record(row)

        # Not retried: after a lost commit a retry would store the sweep twice.
        return self._db.run(insert)

    def get_sweep(self, sweep_id: int) -> SweepRecord:
        """One sweep by id.

        Raises:
            SweepNotFoundError: no sweep has this id.
        """
        return self._db.run(
            lambda session: sweep_to_record(load_sweep(session, sweep_id)),
            readonly=True,
            idempotent=True,
        )

    def list_sweeps(self, *, limit: int | None = None) -> list[SweepRecord]:
        """Sweeps, newest first."""
        statement = select(SweepRow).order_by(SweepRow.id.desc())
        if limit is not None:
            statement = statement.limit(max(limit, 0))

        def read(session: Session) -> list[SweepRecord]:
            return [sweep_to_record(row) for row in session.scalars(statement)]

        return self._db.run(read, readonly=True, idempotent=True)

    def list_sweep_trials(self, sweep_id: int) -> list[SweepTrial]:
        """A sweep's planned trials by number, started or not.

        Raises:
            SweepNotFoundError: no sweep has this id.
        """
        statement = (
            select(SweepTrialRow)
            .where(SweepTrialRow.sweep_id == sweep_id)
            .order_by(SweepTrialRow.trial)
        )

        def read(session: Session) -> list[SweepTrial]:
            load_sweep(session, sweep_id)
            return [sweep_trial_to_record(row) for row in session.scalars(statement)]

        return self._db.run(read, readonly=True, idempotent=True)

    def running_sweep_ids(self) -> list[int]:
        """Ids of the sweeps that may still start trials (for the reconciler)."""
        statement = select(SweepRow.id).where(SweepRow.status == SweepStatus.RUNNING.value)
        return self._db.run(
            lambda session: list(session.scalars(statement)), readonly=True, idempotent=True
        )

    def fill_slots(self, sweep_id: int) -> list[RunRecord]:
        """Create the next trials' runs (QUEUED) for every free slot, in one transaction.

        Marks the sweep SUCCEEDED once no trial is left to start and none is active.

        Returns:
            The runs created now (publish them); empty when no slot was free or nothing is left.

        Raises:
            SweepNotFoundError: no sweep has this id.
        """
        now = self._now()

        def fill(session: Session) -> list[RunRecord]:
            sweep = load_sweep(session, sweep_id, for_update=True)
            if sweep.status != SweepStatus.RUNNING.value:
                return []
            active = _count_active(session, sweep_id)
            pending = list(
                session.scalars(
                    select(SweepTrialRow)
                    .where(SweepTrialRow.sweep_id == sweep_id, SweepTrialRow.run_id.is_(None))
                    .order_by(SweepTrialRow.trial)
                    .limit(max(sweep.max_concurrent - active, 0))
                )
            )
            created = [_create_trial_run(session, sweep, planned, now) for planned in pending]
            if not created and active == 0 and not _has_pending(session, sweep_id):
                sweep.status, sweep.finished_at = SweepStatus.SUCCEEDED.value, now
            return created

        # Not retried: a retry after a lost commit finds the slots taken and creates nothing,
        # which would hide the runs to publish (the reconciler publishes them instead).
        return self._db.run(fill)

    def cancel_sweep(self, sweep_id: int) -> SweepRecord:
        """Stop a sweep: no trial starts any more, QUEUED trials end CANCELLED, RUNNING ones are
        flagged and stop at their next chunk. Cancelling a finished sweep changes nothing.

        Raises:
            SweepNotFoundError: no sweep has this id.
        """
        now = self._now()

        def cancel(session: Session) -> SweepRecord:
            sweep = load_sweep(session, sweep_id, for_update=True)
            if sweep.status == SweepStatus.RUNNING.value:
                sweep.status, sweep.finished_at = SweepStatus.CANCELLED.value, now
            trials = Run.sweep_id == sweep_id
            session.execute(
                update(Run)
                .where(trials, Run.status == RunStatus.QUEUED.value)
                .values(status=RunStatus.CANCELLED.value, finished_at=now)
            )
            session.execute(
                update(Run)
                .where(trials, Run.status == RunStatus.RUNNING.value)
                .values(cancel_requested=True)
            )
            return sweep_to_record(sweep)

        return self._db.run(cancel, idempotent=True)


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


def _count_active(session: Session, sweep_id: int) -> int:
    statement = select(func.count()).where(Run.sweep_id == sweep_id, Run.status.in_(_ACTIVE))
    return int(session.execute(statement).scalar_one())


def _has_pending(session: Session, sweep_id: int) -> bool:
    statement = select(SweepTrialRow.trial).where(
        SweepTrialRow.sweep_id == sweep_id, SweepTrialRow.run_id.is_(None)
    )
    return session.execute(statement.limit(1)).first() is not None


def _create_trial_run(
    session: Session, sweep: SweepRow, planned: SweepTrialRow, now: Any
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
    )
    session.add(row)
    session.flush()
    planned.run_id = row.id
    return run_to_record(row)
