"""Evaluation results: one row per evaluation job, fenced on the job's attempt and idempotent.

The read functions (``list_evaluations``, ``get_evaluation_for_job``, ``find_evaluation``,
``get_evaluation``, ``search_evaluations``) are what other readers (the CLI, the dashboard) use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import EvaluationNotFoundError, InvalidValueError
from storage.models import EvaluationJob, EvaluationRow
from storage.record_mapping import evaluation_to_record, json_safe, none_if_nan
from storage.records import EvaluationRecord
from storage.repository_base import RepositoryBase, fenced_update, load_run
from storage.validation import MAX_ID


class EvaluationStore(RepositoryBase):
    """Saving and listing evaluations of training runs' checkpoints."""

    def save_evaluation(
        self,
        *,
        run_id: int,
        checkpoint_step: int,
        split: str,
        loss: float,
        accuracy: float,
        per_class_accuracy: Sequence[float | None],
        confusion: Sequence[Sequence[int]],
        job_id: int | None = None,
        job_attempt: int | None = None,
    ) -> EvaluationRecord:
        """Store the evaluation of ``run_id``'s checkpoint at ``checkpoint_step``.

        With ``job_id`` (the eval job that computed it) the write is fenced on ``job_attempt``
        and idempotent: a job that already saved its evaluation gets that row back. NaN loss,
        accuracy or per-class accuracy (``None`` there too: a class without examples) is stored
        as NULL and read back as NaN; infinities are kept except in ``per_class_accuracy``.

        Raises:
            StaleAttemptError: ``job_attempt`` no longer owns the eval job; nothing was written.
            RunNotFoundError: ``run_id`` does not exist.
            EvaluationJobNotFoundError: ``job_id`` does not exist.
            InvalidValueError: ``job_id`` without ``job_attempt``, or a malformed confusion matrix.
        """
        if job_id is not None and job_attempt is None:
            raise InvalidValueError("save_evaluation: job_id needs the job's attempt (job_attempt)")
        values = {
            "run_id": run_id,
            "checkpoint_step": checkpoint_step,
            "split": split,
            "loss": none_if_nan(loss),
            "accuracy": none_if_nan(accuracy),
            "per_class": _per_class_json(per_class_accuracy),
            "confusion": _confusion_matrix(confusion),
            "job_id": job_id,
            "created_at": self._now(),
        }

        def save(session: Session) -> EvaluationRecord:
            if job_id is not None and job_attempt is not None:
                # Fence first: takes the job's row lock, so two copies of one job serialize here.
                fenced_update(
                    session, job_id, job_attempt, {"attempt": EvaluationJob.attempt}, EvaluationJob
                )
                existing = session.scalars(
                    select(EvaluationRow).where(EvaluationRow.job_id == job_id)
                ).one_or_none()
                if existing is not None:
                    return evaluation_to_record(existing)
            load_run(session, run_id)
            row = EvaluationRow(**values)
            session.add(row)
            session.flush()
            return evaluation_to_record(row)

        return self._db.run(save, idempotent=job_id is not None)

    def list_evaluations(self, run_id: int) -> list[EvaluationRecord]:
        """A training run's evaluations, by checkpoint step then age.

        Raises:
            RunNotFoundError: no run has this id.
        """

        def listing(session: Session) -> list[EvaluationRecord]:
            statement = (
                select(EvaluationRow)
                .where(EvaluationRow.run_id == run_id)
                .order_by(EvaluationRow.checkpoint_step, EvaluationRow.id)
            )
            records = [evaluation_to_record(row) for row in session.scalars(statement)]
            if not records:
                load_run(session, run_id)
            return records

        return self._db.run(listing, readonly=True, idempotent=True)

    def get_evaluation_for_job(self, job_id: int) -> EvaluationRecord | None:
        """The evaluation an eval job saved, or ``None`` if it has not saved one."""

        def lookup(session: Session) -> EvaluationRecord | None:
            statement = select(EvaluationRow).where(EvaluationRow.job_id == job_id)
            row = session.scalars(statement).one_or_none()
            return None if row is None else evaluation_to_record(row)

        return self._db.run(lookup, readonly=True, idempotent=True)

    def list_evaluations_of_runs(self, run_ids: Sequence[int]) -> dict[int, list[EvaluationRecord]]:
        """Several training runs' evaluations in one query (a page of the dashboard's runs list),
        each run's by checkpoint step then age; runs without one are absent."""
        if not run_ids:
            return {}

        def listing(session: Session) -> dict[int, list[EvaluationRecord]]:
            statement = (
                select(EvaluationRow)
                .where(EvaluationRow.run_id.in_(list(run_ids)))
                .order_by(EvaluationRow.checkpoint_step, EvaluationRow.id)
            )
            found: dict[int, list[EvaluationRecord]] = {}
            for row in session.scalars(statement):
                found.setdefault(row.run_id, []).append(evaluation_to_record(row))
            return found

        return self._db.run(listing, readonly=True, idempotent=True)

    def find_evaluation(
        self, run_id: int, checkpoint_step: int, split: str
    ) -> EvaluationRecord | None:
        """The newest stored evaluation of ``run_id``'s checkpoint ``checkpoint_step`` on ``split``.

        ``trainq eval`` returns it instead of evaluating the same weights on the same images
        again (the result would be the same numbers).
        """
        statement = (
            select(EvaluationRow)
            .where(
                EvaluationRow.run_id == run_id,
                EvaluationRow.checkpoint_step == checkpoint_step,
                EvaluationRow.split == split,
            )
            .order_by(EvaluationRow.id.desc())
            .limit(1)
        )

        def lookup(session: Session) -> EvaluationRecord | None:
            row = session.scalars(statement).one_or_none()
            return None if row is None else evaluation_to_record(row)

        return self._db.run(lookup, readonly=True, idempotent=True)

    def get_evaluation(self, evaluation_id: int) -> EvaluationRecord:
        """One stored evaluation by its id.

        Raises:
            EvaluationNotFoundError: no evaluation has this id.
        """

        def lookup(session: Session) -> EvaluationRecord:
            row = (
                session.get(EvaluationRow, evaluation_id) if 1 <= evaluation_id <= MAX_ID else None
            )
            if row is None:
                raise EvaluationNotFoundError(
                    f"no evaluation with id {evaluation_id}; `trainq evals list` shows them"
                )
            return evaluation_to_record(row)

        return self._db.run(lookup, readonly=True, idempotent=True)

    def search_evaluations(
        self, *, run_ids: Sequence[int] | None = None, split: str | None = None
    ) -> list[EvaluationRecord]:
        """Stored evaluations of any training runs (or of ``run_ids``), on ``split`` if given.

        Ordered by id, oldest first; a run id without evaluations simply adds none.
        """
        statement = select(EvaluationRow).order_by(EvaluationRow.id)
        if run_ids is not None:
            statement = statement.where(EvaluationRow.run_id.in_(list(run_ids)))
        if split is not None:
            statement = statement.where(EvaluationRow.split == split)

        def listing(session: Session) -> list[EvaluationRecord]:
            return [evaluation_to_record(row) for row in session.scalars(statement)]

        return self._db.run(listing, readonly=True, idempotent=True)


def _per_class_json(per_class_accuracy: Sequence[float | None]) -> list[float | None]:
    # None (a class without examples), NaN and infinities all become JSON null.
    values = [math.nan if value is None else float(value) for value in per_class_accuracy]
    return [None if value is None else float(value) for value in json_safe(values)]


def _confusion_matrix(confusion: Sequence[Sequence[int]]) -> list[list[int]]:
    matrix = [[int(count) for count in line] for line in confusion]
    if any(len(line) != len(matrix) for line in matrix):
        raise InvalidValueError(
            f"confusion matrix must be square; got rows of lengths {[len(r) for r in matrix]}"
        )
    return matrix
