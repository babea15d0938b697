"""Validation metrics: a run's loss and accuracy over its held-out images, per checkpoint."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ValidationMetricRow
from storage.record_mapping import none_if_nan, validation_to_record
from storage.repository_base import RepositoryBase, insert_ignoring_duplicates, load_run
from storage.sweep_records import ValidationMetric


class ValidationStore(RepositoryBase):
    """Writing and reading ``validation_metrics``."""

    def record_validation(self, run_id: int, step: int, loss: float, accuracy: float) -> None:
        """Store the validation metrics of ``run_id``'s checkpoint at ``step``.

        Idempotent on ``(run_id, step)``: the weights of a checkpoint are fixed, so a resumed
        attempt that computes them again gets the same numbers; the first row is kept. NaN is
        stored as NULL.

        Raises:
            RunNotFoundError: no run has this id.
        """

        def write(session: Session) -> None:
            load_run(session, run_id)
            store_validation(session, run_id, step, loss, accuracy)

        return self._db.run(write, idempotent=True)

    def list_validation(self, run_id: int) -> list[ValidationMetric]:
        """A run's validation metrics by step (empty for a run without a validation split)."""
        statement = (
            select(ValidationMetricRow)
            .where(ValidationMetricRow.run_id == run_id)
            .order_by(ValidationMetricRow.step)
        )

        def read(session: Session) -> list[ValidationMetric]:
            return [validation_to_record(row) for row in session.scalars(statement)]

        return self._db.run(read, readonly=True, idempotent=True)


def store_validation(
    session: Session, run_id: int, step: int, loss: float, accuracy: float
) -> None:
    """Insert a checkpoint's validation metrics in ``session``, keeping a row already there."""
    values = {
        "run_id": run_id,
        "step": step,
        "loss": none_if_nan(loss),
        "accuracy": none_if_nan(accuracy),
    }
    insert_ignoring_duplicates(session, ValidationMetricRow, values)
