"""Retention: thin the checkpoints of finished runs.

A run keeps a checkpoint every ``checkpoint_every_steps`` (a million-step run: a thousand weight
blobs), which only a resume needs; once the run is finished only its final weights and perhaps its
best checkpoint are used. ``trainq gc`` (and ``Client.gc``) call these operations one run per
transaction, so a long collection never holds a lock for long and shows its progress. The
space is given back by ``reclaim_space`` (``storage.run_removal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.errors import InvalidStateError, InvalidValueError
from storage.models import CheckpointRow, EvaluationJob, Run, ValidationMetricRow
from storage.records import RunStatus
from storage.repository_base import RepositoryBase, load_run
from storage.retention_records import CheckpointKeep, CheckpointThinning

#: The statuses a run never leaves: only their checkpoints may go.
_FINISHED = [status.value for status in RunStatus if status.terminal]
#: The statuses of an evaluation job that will still read its checkpoint.
_PENDING = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]


class CheckpointRetention(RepositoryBase):
    """Which finished runs have checkpoints to spare, and removing them."""

    def runs_to_thin(self, *, older_than_s: float | None = None) -> list[int]:
        """Ids of the finished training runs with more than one checkpoint, oldest first.

        Args:
            older_than_s: only runs that finished at least this many seconds ago (by the
                database's clock; a run cancelled before it started counts from its creation).

        Raises:
            InvalidValueError: ``older_than_s`` is negative or not finite.
        """
        if older_than_s is not None and not 0 <= older_than_s < float("inf"):
            raise InvalidValueError(f"older_than_s={older_than_s!r} must be a number >= 0")

        def listing(session: Session) -> list[int]:
            statement = (
                select(Run.id)
                .join(CheckpointRow, CheckpointRow.run_id == Run.id)
                .where(Run.status.in_(_FINISHED))
                .group_by(Run.id)
                .having(func.count() > 1)
                .order_by(Run.id)
            )
            if older_than_s is not None:
                cutoff = self._server_now(session) - timedelta(seconds=older_than_s)
                statement = statement.where(
                    func.coalesce(Run.finished_at, Run.created_at) <= cutoff
                )
            return [int(run_id) for run_id in session.scalars(statement)]

        return self._db.run(listing, readonly=True, idempotent=True)

    def thin_checkpoints(
        self, run_id: int, *, keep: CheckpointKeep, dry_run: bool = False
    ) -> CheckpointThinning:
        """Remove the checkpoints of a finished run that ``keep`` does not keep.

        Always kept: the newest checkpoint (a succeeded run's final weights), the final weights
        at ``steps_done``, and every checkpoint an evaluation job still queued or running will
        read. ``best`` also keeps the checkpoint with the highest validation accuracy (the
        earliest of equals). On PostgreSQL the run row is locked meanwhile, so an evaluation
        job queued at the same moment is either seen here or created after the removal.

        Args:
            keep: which checkpoints stay (see :class:`CheckpointKeep`).
            dry_run: say what would be removed; remove nothing.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidStateError: the run is queued or running (a resume needs its checkpoints).
        """
        keep = CheckpointKeep(keep)

        def thin(session: Session) -> CheckpointThinning:
            run = load_run(session, run_id, for_update=not dry_run)
            if not RunStatus(run.status).terminal:
                raise InvalidStateError(
                    f"run {run_id} is {run.status}: only the checkpoints of finished runs are "
                    "thinned (a resume starts from them)"
                )
            sizes = {
                int(step): int(size)
                for step, size in session.execute(
                    select(CheckpointRow.step, CheckpointRow.size_bytes).where(
                        CheckpointRow.run_id == run_id
                    )
                )
            }
            kept = _kept_steps(session, run, sorted(sizes), keep)
            removed = tuple(step for step in sorted(sizes) if step not in kept)
            if removed and not dry_run:
                session.execute(
                    delete(CheckpointRow).where(
                        CheckpointRow.run_id == run_id, CheckpointRow.step.not_in(kept)
                    )
                )
            return CheckpointThinning(
                run_id=run_id,
                kept_steps=tuple(sorted(kept)),
                removed_steps=removed,
                freed_bytes=sum(sizes[step] for step in removed),
            )

        return self._db.run(thin, readonly=dry_run, idempotent=dry_run)


def _kept_steps(session: Session, run: Run, steps: Sequence[int], keep: CheckpointKeep) -> set[int]:
    """The steps of ``steps`` (a run's checkpoints, ascending) that ``keep`` keeps."""
    if keep is CheckpointKeep.ALL or not steps:
        return set(steps)
    kept = {steps[-1]}
    if run.status == RunStatus.SUCCEEDED.value and run.steps_done in steps:
        kept.add(run.steps_done)  # the final weights, even if a stray later step existed
    pending = select(EvaluationJob.checkpoint_step).where(
        EvaluationJob.run_id == run.id,
        EvaluationJob.status.in_(_PENDING),
        EvaluationJob.checkpoint_step.is_not(None),
    )
    kept.update(step for step in session.scalars(pending) if step is not None and step in steps)
    if keep is CheckpointKeep.BEST:
        best = session.scalars(
            select(ValidationMetricRow.step)
            .join(
                CheckpointRow,
                (CheckpointRow.run_id == ValidationMetricRow.run_id)
                & (CheckpointRow.step == ValidationMetricRow.step),
            )
            .where(ValidationMetricRow.run_id == run.id, ValidationMetricRow.accuracy.is_not(None))
            .order_by(ValidationMetricRow.accuracy.desc(), ValidationMetricRow.step)
            .limit(1)
        ).first()
        if best is not None:
            kept.add(int(best))
    return kept
