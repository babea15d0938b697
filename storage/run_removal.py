"""Deleting runs for good, or a sweep with its trials, and giving SQLite's file space back.

A run's rows live in every table that refers to ``runs``: metric chunks, checkpoints (final
weights are the checkpoint at its last step), evaluations and evaluation jobs, validation
metrics, ASHA rung results, attempts. Those foreign keys say ON DELETE CASCADE, but the rows are
deleted here explicitly, table by table, in the one transaction that deletes the run: the result
does not depend on SQLite's ``foreign_keys`` pragma being on, and the bytes freed are measured
in the same snapshot. A QUEUED or RUNNING run (or one with an evaluation job in progress) is
refused: a worker may be writing to it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from storage.errors import InvalidStateError
from storage.models import (
    CheckpointRow,
    EvaluationJob,
    EvaluationRow,
    MetricChunkRow,
    Run,
    RunAttemptRow,
    RungResultRow,
    SweepRow,
    SweepTrialRow,
    ValidationMetricRow,
)
from storage.records import RemovedRuns, RunStatus
from storage.repository_base import RepositoryBase
from storage.run_annotations import load_runs, refuse_active, refuse_running_sweep
from storage.trial_slots import load_sweep
from storage.validation import check_id

_ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)

#: ``VACUUM`` rewrites the file through the write-ahead log; the checkpoint folds the log into
#: the file and truncates it, so that the file itself shrinks now.
_VACUUM = ("VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)")

#: Every table with a foreign key to ``runs.id``, children first.
_RUN_CHILDREN = (
    EvaluationRow,  # before evaluation_jobs, which its job_id refers to
    EvaluationJob,
    MetricChunkRow,
    CheckpointRow,
    ValidationMetricRow,
    RungResultRow,
    RunAttemptRow,
)


class RunRemoval(RepositoryBase):
    """Delete finished runs, or a finished sweep with its trials; reclaim SQLite's space."""

    def delete_runs(self, run_ids: Sequence[int], *, dry_run: bool = False) -> RemovedRuns:
        """Delete runs and everything stored for them, all or nothing, in one transaction.

        A sweep's trial is deleted with its sweep (:meth:`delete_sweep`), never alone: the
        sweep's best trial and ASHA's decisions are read from its trials.

        Args:
            run_ids: the runs.
            dry_run: check and measure only; nothing is deleted.

        Raises:
            RunNotFoundError: naming every id that matches no run (nothing was deleted).
            InvalidStateError: a run is QUEUED or RUNNING, has an evaluation job QUEUED or
                RUNNING, or is a sweep's trial (nothing was deleted).
        """
        ids = list(dict.fromkeys(check_id(run_id) for run_id in run_ids))

        def remove(session: Session) -> RemovedRuns:
            rows = load_runs(session, ids, for_update=not dry_run)
            refuse_active(rows, "delete")
            trials = [row for row in rows if row.sweep_id is not None]
            if trials:
                row = trials[0]
                raise InvalidStateError(
                    f"run {row.id} is trial {row.trial} of sweep {row.sweep_id}: delete the "
                    f"sweep with its trials (`trainq sweep delete {row.sweep_id}`), or archive "
                    f"the run (`trainq runs archive {row.id}`); nothing was deleted"
                )
            return _remove(session, ids, (), dry_run=dry_run)

        return self._db.run(remove, readonly=dry_run)

    def delete_sweep(self, sweep_id: int, *, dry_run: bool = False) -> RemovedRuns:
        """Delete a sweep, its planned trials, and every run it started, in one transaction.

        Args:
            sweep_id: the sweep.
            dry_run: check and measure only; nothing is deleted.

        Raises:
            SweepNotFoundError: no sweep has this id.
            InvalidStateError: the sweep still runs, or one of its trials (or an evaluation job
                of one) is QUEUED or RUNNING (nothing was deleted).
        """
        check_id(sweep_id, "sweep id")

        def remove(session: Session) -> RemovedRuns:
            # Lock order as everywhere: the sweep row, then its runs (storage.trial_slots).
            sweep = load_sweep(session, sweep_id, for_update=not dry_run)
            refuse_running_sweep(sweep, "delete")
            statement = select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)
            if not dry_run:
                statement = statement.with_for_update()
            rows = list(session.scalars(statement))
            refuse_active(rows, "delete")
            removed = _remove(session, [row.id for row in rows], (sweep_id,), dry_run=dry_run)
            if not dry_run:
                session.execute(delete(RungResultRow).where(RungResultRow.sweep_id == sweep_id))
                session.execute(delete(SweepTrialRow).where(SweepTrialRow.sweep_id == sweep_id))
                session.execute(delete(SweepRow).where(SweepRow.id == sweep_id))
            return removed

        return self._db.run(remove, readonly=dry_run)

    def reclaim_space(self) -> int | None:
        """Give the space of deleted rows back to the file system: SQLite's ``VACUUM``.

        It rewrites the whole file (it needs about as much free disk again, and waits for other
        writers); PostgreSQL needs nothing of the kind (autovacuum reuses the space).

        Returns:
            How many bytes the SQLite file (with its write-ahead log) shrank by; None on
            PostgreSQL, where nothing is done.

        Raises:
            DatabaseBusyError: another process held the database for too long.
            StorageError: the file could not be rewritten (a full disk, among others).
        """
        path = self._db.file_path
        if path is None:
            return None
        wal = path.with_name(path.name + "-wal")

        def size_bytes() -> int:
            return sum(p.stat().st_size for p in (path, wal) if p.exists())

        before = size_bytes()
        self._db.run_outside_a_transaction(_VACUUM)
        return max(before - size_bytes(), 0)


def _remove(
    session: Session, run_ids: Sequence[int], sweep_ids: tuple[int, ...], *, dry_run: bool
) -> RemovedRuns:
    """Measure, then (unless ``dry_run``) delete every row of ``run_ids`` in every table."""
    busy = list(
        session.execute(
            select(EvaluationJob.id, EvaluationJob.run_id, EvaluationJob.status).where(
                EvaluationJob.run_id.in_(run_ids), EvaluationJob.status.in_(_ACTIVE)
            )
        )
    )
    if busy:
        job_id, run_id, status = busy[0]
        raise InvalidStateError(
            f"evaluation job {job_id} of run {run_id} is {status}: cancel it first "
            f"(`trainq cancel --evals {job_id}`) or let it end; nothing was deleted"
        )
    metric_bytes = _total(
        session,
        func.length(MetricChunkRow.loss) + func.length(MetricChunkRow.accuracy),
        MetricChunkRow.run_id.in_(run_ids),
    )
    checkpoint_bytes = _total(
        session, func.length(CheckpointRow.weights), CheckpointRow.run_id.in_(run_ids)
    )
    checkpoints = _total(session, func.count(), CheckpointRow.run_id.in_(run_ids), CheckpointRow)
    evaluations = _total(session, func.count(), EvaluationRow.run_id.in_(run_ids), EvaluationRow)
    if not dry_run:
        for model in _RUN_CHILDREN:
            session.execute(delete(model).where(model.run_id.in_(run_ids)))
        session.execute(delete(Run).where(Run.id.in_(run_ids)))
    return RemovedRuns(
        run_ids=tuple(run_ids),
        sweep_ids=sweep_ids,
        metric_bytes=metric_bytes,
        checkpoint_bytes=checkpoint_bytes,
        checkpoints=checkpoints,
        evaluations=evaluations,
        deleted=not dry_run,
    )


def _total(
    session: Session,
    value: ColumnElement[int],
    where: ColumnElement[bool],
    table: type[CheckpointRow] | type[EvaluationRow] | None = None,
) -> int:
    """SUM of ``value`` (or a COUNT, given its ``table``) over the rows ``where`` selects."""
    if table is not None:
        statement = select(value).select_from(table).where(where)
    else:
        statement = select(func.coalesce(func.sum(value), 0)).where(where)
    return int(session.execute(statement).scalar_one())
