"""Sweeps and their trials: create a sweep with its planned trials, fill free slots, cancel.

No central process runs a sweep. The transaction that ends a trial also starts the next one
(``storage.trial_slots``); :meth:`SweepStore.fill_slots` does the same on its own, for the CLI
that starts the sweep and the reconciler: one transaction that locks the sweep row, counts the
trials still QUEUED or RUNNING, and turns as many planned trials into QUEUED runs as
``max_concurrent`` allows. Whoever ended the trial then publishes the new runs
(:meth:`SweepStore.take_unpublished_trials`); if it dies first, they are QUEUED runs never
published, which the reconciler publishes. A unique index on ``runs (sweep_id, trial)`` backs the
lock up: a trial is created once, whoever races for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from storage.dataset_refs import data_sha256_of
from storage.errors import InvalidValueError
from storage.models import Run, SweepRow, SweepTrialRow
from storage.record_mapping import (
    check_finite_json,
    run_to_record,
    sweep_to_record,
    sweep_trial_to_record,
)
from storage.records import RunRecord, RunStatus
from storage.repository_base import RepositoryBase
from storage.sweep_records import PlannedTrial, SweepRecord, SweepStatus, SweepTrial
from storage.trial_slots import fill_free_slots, load_sweep

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
            InvalidValueError: no trial, ``max_concurrent``/``max_attempts`` below 1, NaN
                or infinity in the spec or a trial's config, or a ``data_sha256`` there that is
                not a SHA-256.
        """
        if not trials:
            raise InvalidValueError("a sweep needs at least one trial")
        if max_concurrent < 1 or max_attempts < 1:
            raise InvalidValueError("max_concurrent and max_attempts must be at least 1")
        check_finite_json(spec, "sweep spec")
        for planned in trials:
            check_finite_json(planned.config, "trial config")
            data_sha256_of(planned.config)

        def insert(session: Session) -> SweepRecord:
            now = self._server_now(session)
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

    def list_sweeps(
        self, *, limit: int | None = None, archived: bool | None = False, offset: int = 0
    ) -> list[SweepRecord]:
        """Sweeps, newest first.

        Args:
            limit: at most this many.
            archived: False (the default): only sweeps not archived; True: only archived
                ones; None: both.
            offset: skip this many first (a page of a listing).
        """
        statement = _archived(select(SweepRow), archived).order_by(SweepRow.id.desc())
        if limit is not None:
            statement = statement.limit(max(limit, 0))
        if offset > 0:
            statement = statement.offset(offset)

        def read(session: Session) -> list[SweepRecord]:
            return [sweep_to_record(row) for row in session.scalars(statement)]

        return self._db.run(read, readonly=True, idempotent=True)

    def count_sweeps(self, *, archived: bool | None = False) -> int:
        """How many sweeps ``list_sweeps`` would list without a limit (none is loaded)."""
        statement = _archived(select(func.count()).select_from(SweepRow), archived)

        def count(session: Session) -> int:
            return int(session.scalar(statement) or 0)

        return self._db.run(count, readonly=True, idempotent=True)

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

        Marks the sweep SUCCEEDED once no trial is left to start and none is active. Every
        transition that ends a trial fills its slot itself (``storage.trial_slots``); this is for
        the sweep's start and the reconciler.

        Returns:
            The runs created now (publish them); empty when no slot was free or nothing is left.

        Raises:
            SweepNotFoundError: no sweep has this id.
        """

        def fill(session: Session) -> list[RunRecord]:
            sweep = load_sweep(session, sweep_id, for_update=True)
            return fill_free_slots(session, sweep, self._server_now(session))

        # Not retried: a retry after a lost commit finds the slots taken and creates nothing;
        # the runs are published by whoever takes them (take_unpublished_trials) or the reconciler.
        return self._db.run(fill)

    def take_unpublished_trials(self, sweep_id: int) -> list[RunRecord]:
        """The sweep's trials created but never published, marked published now, for the caller
        to publish.

        A trial run is created (QUEUED, ``published_at`` NULL, never claimed) in the transaction
        that frees its slot; publishing comes after that commit. One conditional UPDATE hands each
        such run to exactly one caller, so two processes ending trials at once do not publish the
        same one twice. If the caller dies before publishing, the run is QUEUED with an old
        ``published_at``, which the reconciler publishes again. Handed-back and requeued runs
        (claimed before) are left to those who requeued them.
        """
        # The server's time: the reconciler compares it with its own (redispatch).
        now = self._server_now_sql()
        statement = (
            update(Run)
            .where(
                Run.sweep_id == sweep_id,
                Run.status == RunStatus.QUEUED.value,
                Run.published_at.is_(None),
                Run.started_at.is_(None),
            )
            .values(published_at=now)
            .returning(Run)
            .execution_options(populate_existing=True)
        )

        def take(session: Session) -> list[RunRecord]:
            return sorted(
                (run_to_record(row) for row in session.scalars(statement)),
                key=lambda run: run.trial or 0,
            )

        # Not retried: after a lost commit the runs are taken; the reconciler publishes them.
        return self._db.run(take)

    def cancel_sweep(self, sweep_id: int) -> SweepRecord:
        """Stop a sweep: no trial starts any more, QUEUED trials end CANCELLED, RUNNING ones are
        flagged and stop at their next chunk. Cancelling a finished sweep changes nothing.

        Raises:
            SweepNotFoundError: no sweep has this id.
        """

        def cancel(session: Session) -> SweepRecord:
            sweep = load_sweep(session, sweep_id, for_update=True)
            now = self._server_now(session)
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


def _archived(statement: Select[Any], archived: bool | None) -> Select[Any]:
    """``statement`` over sweeps, kept to the archived ones (True), the others (False) or all."""
    if archived is None:
        return statement
    archived_at = SweepRow.archived_at
    return statement.where(archived_at.is_not(None) if archived else archived_at.is_(None))
