"""Reads for the web dashboard: a page of training runs with their newest numbers, and curves
downsampled to a fixed number of points whatever the run's length.

Everything here only reads. Downsampling works on the float32 chunk blobs with NumPy (a per-bucket
mean), so a run of a million steps never becomes a million Python objects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from storage.errors import InvalidValueError
from storage.metric_codec import decode_chunks
from storage.metric_store import MetricStore
from storage.models import MetricChunkRow, Run, ValidationMetricRow
from storage.record_mapping import run_to_record
from storage.records import JobKind, RunRecord, RunStatus
from storage.repository_base import load_run
from storage.validation import check_tags

if TYPE_CHECKING:
    # NumPy is imported by the reads that need it: `trainq runs list` loads this module too.
    import numpy as np

    from storage.metric_store import StepArray
    from storage.records import FloatArray

#: The most points a downsampled curve has (the issue's "about 1,000 points for any length").
DEFAULT_MAX_POINTS = 1000


@dataclass(frozen=True)
class RunPage:
    """One page of training runs, newest first, and how many runs match the filters in all."""

    runs: tuple[RunRecord, ...]
    total: int


@dataclass(frozen=True)
class LatestMetrics:
    """The mean loss and accuracy of a run's newest metric chunk (None when not finite)."""

    last_step: int
    loss: float | None
    accuracy: float | None


@dataclass(frozen=True)
class MetricCurve:
    """A run's loss and accuracy against step, one point per bucket of ``bucket_steps`` steps.

    ``steps`` is each bucket's last step; values are bucket means, ``None`` where not finite.
    """

    steps: tuple[int, ...]
    loss: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    bucket_steps: int
    last_step: int


def training_runs_statement() -> Select[Run]:
    """Every training run (not evaluation jobs): the one place the dashboard says what a run is."""
    return select(Run).where(Run.kind == JobKind.TRAIN.value)


class DashboardReads(MetricStore):
    """What the dashboard's pages read that the other parts do not offer."""

    def page_training_runs(
        self,
        *,
        statuses: Sequence[RunStatus] = (),
        tags: Mapping[str, str] | None = None,
        sweep_id: int | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> RunPage:
        """Training runs matching every filter, newest first, ``limit`` of them from ``offset``.

        Raises:
            InvalidValueError: a tag key is malformed, or offset/limit is negative.
        """
        if offset < 0 or limit < 1:
            raise InvalidValueError(
                f"offset={offset} and limit={limit}: need 0 <= offset, 1 <= limit"
            )
        statement = training_runs_statement()
        if statuses:
            statement = statement.where(Run.status.in_([RunStatus(s).value for s in statuses]))
        for key, value in check_tags(tags or {}).items():
            statement = statement.where(Run.tags[key].as_string() == value)
        if sweep_id is not None:
            statement = statement.where(Run.sweep_id == sweep_id)
        counting = select(func.count()).select_from(statement.subquery())
        paging = statement.order_by(Run.id.desc()).offset(offset).limit(limit)

        def read(session: Session) -> RunPage:
            runs = tuple(run_to_record(row) for row in session.scalars(paging))
            return RunPage(runs=runs, total=int(session.execute(counting).scalar_one()))

        return self._db.run(read, readonly=True, idempotent=True)

    def latest_metrics(self, run_ids: Sequence[int]) -> dict[int, LatestMetrics]:
        """Each run's newest metric chunk, reduced to its mean (runs without metrics are absent)."""
        if not run_ids:
            return {}
        newest = (
            select(MetricChunkRow.run_id, func.max(MetricChunkRow.first_step))
            .where(MetricChunkRow.run_id.in_(list(run_ids)))
            .group_by(MetricChunkRow.run_id)
        )
        statement = select(
            MetricChunkRow.run_id,
            MetricChunkRow.first_step,
            MetricChunkRow.n_steps,
            MetricChunkRow.loss,
            MetricChunkRow.accuracy,
        ).where(tuple_(MetricChunkRow.run_id, MetricChunkRow.first_step).in_(newest))

        def read(session: Session) -> dict[int, LatestMetrics]:
            return {
                int(run_id): LatestMetrics(
                    last_step=int(first) + int(n_steps) - 1,
                    loss=_blob_mean(loss),
                    accuracy=_blob_mean(accuracy),
                )
                for run_id, first, n_steps, loss, accuracy in session.execute(statement)
            }

        return self._db.run(read, readonly=True, idempotent=True)

    def latest_validation_accuracy(self, run_ids: Sequence[int]) -> dict[int, float | None]:
        """Each run's validation accuracy at its newest checkpoint (runs without one are absent)."""
        if not run_ids:
            return {}
        newest = (
            select(ValidationMetricRow.run_id, func.max(ValidationMetricRow.step))
            .where(ValidationMetricRow.run_id.in_(list(run_ids)))
            .group_by(ValidationMetricRow.run_id)
        )
        statement = select(ValidationMetricRow.run_id, ValidationMetricRow.accuracy).where(
            tuple_(ValidationMetricRow.run_id, ValidationMetricRow.step).in_(newest)
        )

        def read(session: Session) -> dict[int, float | None]:
            return {int(run_id): accuracy for run_id, accuracy in session.execute(statement)}

        return self._db.run(read, readonly=True, idempotent=True)

    def read_metric_curve(
        self, run_id: int, *, max_points: int = DEFAULT_MAX_POINTS
    ) -> MetricCurve:
        """A run's per-step metrics averaged into at most ``max_points`` equal buckets of steps.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidValueError: ``max_points < 1``.
        """
        import numpy as np

        if max_points < 1:
            raise InvalidValueError(f"max_points={max_points} must be at least 1")
        rows = self._db.run(
            lambda session: _chunk_rows(session, run_id), readonly=True, idempotent=True
        )
        steps, loss, accuracy = _contiguous(rows) or decode_chunks(run_id, rows)
        if steps.size == 0:
            return MetricCurve((), (), (), 1, 0)
        last_step = int(steps[-1])
        width = max(1, math.ceil(last_step / max_points))
        bucket = (steps - 1) // width
        counts = np.bincount(bucket)
        used = np.flatnonzero(counts)
        bucket_end = np.minimum((used + 1) * width, last_step)
        return MetricCurve(
            steps=tuple(bucket_end.tolist()),
            loss=_bucket_means(bucket, loss, counts, used),
            accuracy=_bucket_means(bucket, accuracy, counts, used),
            bucket_steps=width,
            last_step=last_step,
        )


_ChunkRows = list[tuple[int, int, bytes, bytes]]


def _chunk_rows(session: Session, run_id: int) -> _ChunkRows:
    statement = select(
        MetricChunkRow.first_step,
        MetricChunkRow.n_steps,
        MetricChunkRow.loss,
        MetricChunkRow.accuracy,
    ).where(MetricChunkRow.run_id == run_id)
    rows = [(r[0], r[1], r[2], r[3]) for r in session.execute(statement.order_by("first_step"))]
    if not rows:
        load_run(session, run_id)  # RunNotFoundError for an unknown run
    return rows


def _contiguous(rows: _ChunkRows) -> tuple[StepArray, FloatArray, FloatArray] | None:
    """The usual case, decoded without a per-chunk array: chunks that follow each other with
    no gap or overlap and intact blobs. ``None`` otherwise (the general decoder handles it)."""
    import numpy as np

    if not rows:
        return None
    firsts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    lengths = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    if np.any(firsts[1:] != firsts[:-1] + lengths[:-1]):
        return None
    loss_blob = b"".join(r[2] for r in rows)
    accuracy_blob = b"".join(r[3] for r in rows)
    total = int(lengths.sum())
    if len(loss_blob) != 4 * total or len(accuracy_blob) != 4 * total:
        return None  # a corrupt chunk: the general decoder names it
    steps = np.arange(firsts[0], firsts[0] + total, dtype=np.int64)
    return steps, np.frombuffer(loss_blob, "<f4"), np.frombuffer(accuracy_blob, "<f4")


def _bucket_means(
    bucket: np.ndarray, values: np.ndarray, counts: np.ndarray, used: np.ndarray
) -> tuple[float | None, ...]:
    import numpy as np

    sums = np.bincount(bucket, weights=values.astype(np.float64), minlength=counts.size)
    means = sums[used] / counts[used]
    # A diverged bucket (NaN or infinity) is a gap in the curve, and JSON has no NaN.
    return tuple(None if not math.isfinite(v) else v for v in means.tolist())


def _blob_mean(blob: bytes) -> float | None:
    import numpy as np

    values = np.frombuffer(blob, dtype="<f4")
    if values.size == 0:
        return None
    mean = float(np.mean(values, dtype=np.float64))
    return mean if math.isfinite(mean) else None
