"""Rows in, frozen records out; and the value checks made before anything is written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from storage.errors import InvalidValueError
from storage.records import (
    AttemptOutcome,
    AttemptRecord,
    CheckpointInfo,
    EvaluationJobRecord,
    EvaluationRecord,
    JobKind,
    JobRecord,
    RunRecord,
    RunStatus,
)
from storage.sweep_records import (
    RungResult,
    SweepRecord,
    SweepStatus,
    SweepTrial,
    ValidationMetric,
)

if TYPE_CHECKING:
    # The ORM models only as types: the quick read path maps plain rows without SQLAlchemy.
    from storage.models import (
        CheckpointRow,
        EvaluationJob,
        EvaluationRow,
        Run,
        RunAttemptRow,
        RungResultRow,
        SweepRow,
        SweepTrialRow,
        ValidationMetricRow,
    )

#: The columns of ``runs`` that make a :class:`RunRecord`, named as its fields are.
RUN_COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(RunRecord))


def run_to_record(row: Run) -> RunRecord:
    """Convert a ``runs`` row into a :class:`RunRecord`."""
    return run_record({column: getattr(row, column) for column in RUN_COLUMNS})


def run_record(columns: Mapping[str, Any]) -> RunRecord:
    """A :class:`RunRecord` from one ``runs`` row's values, by column name (JSON decoded, times
    aware)."""
    converted = {
        "kind": JobKind(columns["kind"]),
        "status": RunStatus(columns["status"]),
        "config": dict(columns["config"]),
        "cancel_requested": bool(columns["cancel_requested"]),
        "summary": None if columns["summary"] is None else dict(columns["summary"]),
        "tags": dict(columns["tags"]),
    }
    return RunRecord(**{column: columns[column] for column in RUN_COLUMNS} | converted)


def evaluation_job_to_record(row: EvaluationJob) -> EvaluationJobRecord:
    """Convert an ``evaluation_jobs`` row into an :class:`EvaluationJobRecord`."""
    return EvaluationJobRecord(
        id=row.id,
        run_id=row.run_id,
        checkpoint_step=row.checkpoint_step,
        split=row.split,
        status=RunStatus(row.status),
        queue=row.queue,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        cancel_requested=bool(row.cancel_requested),
        error=row.error,
        worker_host=row.worker_host,
        device=row.device,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        published_at=row.published_at,
    )


def attempt_to_record(row: RunAttemptRow) -> AttemptRecord:
    """Convert a ``run_attempts`` row into an :class:`AttemptRecord`."""
    return AttemptRecord(
        run_id=row.run_id,
        number=row.number,
        attempt=row.attempt,
        worker_host=row.worker_host,
        lease_owner=row.lease_owner,
        device=row.device,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=None if row.outcome is None else AttemptOutcome(row.outcome),
        steps_at_start=row.steps_at_start,
        steps_at_end=row.steps_at_end,
        error=row.error,
    )


def job_to_record(row: Run | EvaluationJob) -> JobRecord:
    """Either kind of job row as its record."""
    from storage.models import EvaluationJob  # loaded already: the row is one of its models

    if isinstance(row, EvaluationJob):
        return evaluation_job_to_record(row)
    return run_to_record(row)


def checkpoint_info(row: CheckpointRow) -> CheckpointInfo:
    """Convert a ``checkpoints`` row (blob not needed) into a :class:`CheckpointInfo`."""
    return CheckpointInfo(
        run_id=row.run_id,
        step=row.step,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


def evaluation_to_record(row: EvaluationRow) -> EvaluationRecord:
    """Convert an ``evaluations`` row; NULLs written for NaN come back as NaN."""
    return EvaluationRecord(
        id=row.id,
        run_id=row.run_id,
        checkpoint_step=row.checkpoint_step,
        split=row.split,
        loss=_nan_if_none(row.loss),
        accuracy=_nan_if_none(row.accuracy),
        per_class_accuracy=[_nan_if_none(value) for value in row.per_class],
        confusion=[[int(count) for count in line] for line in row.confusion],
        job_id=row.job_id,
        created_at=row.created_at,
    )


def sweep_to_record(row: SweepRow) -> SweepRecord:
    """Convert a ``sweeps`` row into a :class:`SweepRecord`."""
    return SweepRecord(
        id=row.id,
        name=row.name,
        status=SweepStatus(row.status),
        spec=dict(row.spec),
        max_concurrent=row.max_concurrent,
        max_attempts=row.max_attempts,
        created_at=row.created_at,
        finished_at=row.finished_at,
        archived_at=row.archived_at,
    )


def sweep_trial_to_record(row: SweepTrialRow) -> SweepTrial:
    """Convert a ``sweep_trials`` row into a :class:`SweepTrial`."""
    return SweepTrial(row.sweep_id, row.trial, dict(row.params), dict(row.config), row.run_id)


def rung_result_to_record(row: RungResultRow) -> RungResult:
    """Convert a ``rung_results`` row into a :class:`RungResult`."""
    return RungResult(
        sweep_id=row.sweep_id,
        rung_step=row.rung_step,
        run_id=row.run_id,
        trial=row.trial,
        objective=row.objective,
        continued=row.continued,
        created_at=row.created_at,
    )


def validation_to_record(row: ValidationMetricRow) -> ValidationMetric:
    """Convert a ``validation_metrics`` row; NULLs written for NaN come back as NaN."""
    return ValidationMetric(
        row.run_id, row.step, _nan_if_none(row.loss), _nan_if_none(row.accuracy)
    )


def none_if_nan(value: float) -> float | None:
    """NaN as ``None`` (SQL NULL / JSON null): SQLite turns NaN into NULL anyway, JSON has none."""
    number = float(value)
    return None if math.isnan(number) else number


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def json_safe(value: Any) -> Any:
    """Return ``value`` with every non-finite float replaced by ``None``.

    Used for a run's ``summary``: JSON has no NaN/Infinity (PostgreSQL's JSONB rejects them), and a
    run that diverged must still be able to record its summary. Readers see ``null``.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    return value


def check_finite_json(value: Any, where: str) -> None:
    """Refuse NaN/Infinity anywhere in ``value`` (configs must be stored exactly as given).

    Raises:
        InvalidValueError: naming ``where`` and the offending value.
    """
    if _has_non_finite(value):
        raise InvalidValueError(
            f"{where} contains NaN or infinity, which JSON cannot store; validate it first"
        )


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(item) for item in value)
    return False
