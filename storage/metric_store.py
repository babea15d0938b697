"""Per-step metrics, stored as chunks: one row per K steps, float32 little-endian blobs.

A chunk is keyed by ``(run_id, first_step)``; chunk boundaries are aligned (checkpoints fall on
chunk ends), so a redelivered or resumed worker rewrites the same keys and the insert is a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, case, select
from sqlalchemy.orm import Session

from storage.attempt_log import record_attempt_device
from storage.checkpoint_store import store_checkpoint
from storage.errors import InvalidValueError
from storage.metric_codec import F32_LE, decode_chunks, wanted_steps
from storage.models import MetricChunkRow, Run
from storage.records import ChunkAck, MetricChunk, MetricRow
from storage.repository_base import (
    RepositoryBase,
    fenced_renewal,
    insert_ignoring_duplicates,
    load_run,
)
from storage.validation_store import store_validation

if TYPE_CHECKING:
    # NumPy is imported where metrics are read or written, not by commands that only list runs.
    import numpy as np
    import numpy.typing as npt

    from storage.records import FloatArray

    StepArray = npt.NDArray[np.int64]


class MetricStore(RepositoryBase):
    """Writing metric chunks (fenced) and reading them back per step."""

    def record_chunk(
        self,
        run_id: int,
        attempt: int,
        chunk: MetricChunk,
        *,
        lease_ttl_s: float,
        checkpoint: Mapping[str, np.ndarray] | None = None,
        validation: tuple[float, float] | None = None,
        device: str | None = None,
    ) -> ChunkAck:
        """Store one chunk of metrics (and optionally the checkpoint at its last step, and that
        checkpoint's validation ``(loss, accuracy)``).

        ``device`` (an attempt's first chunk) is where the run trains, set on the run and its
        attempt so that it shows while the run is running, not only once it finished.

        One transaction: the fenced UPDATE of the run (lease renewal, ``steps_done``) comes first
        and takes the row lock; then the chunk, the checkpoint and its validation metrics are
        inserted, each ignored if already there. A stale attempt writes nothing.

        Returns:
            Whether a cancel was requested, and the new lease expiry.

        Raises:
            StaleAttemptError: ``attempt`` no longer owns the run; nothing was written.
            InvalidValueError: the chunk's arrays are not 1-D, of equal length, non-empty.
        """
        loss, accuracy = _chunk_blobs(chunk)
        # The lease ends by the database's clock, computed in the UPDATE: no extra round trip.
        lease_end = self._lease_end_sql(lease_ttl_s)
        last_step = chunk.last_step
        run_values: dict[str, Any] = {
            "steps_done": case((Run.steps_done < last_step, last_step), else_=Run.steps_done),
        }
        chunk_values = {
            "run_id": run_id,
            "first_step": chunk.first_step,
            "n_steps": chunk.n_steps,
            "loss": loss,
            "accuracy": accuracy,
        }

        if device is not None:
            run_values["device"] = device

        def record(session: Session) -> ChunkAck:
            renewal = fenced_renewal(session, run_id, attempt, lease_end, run_values)
            if device is not None:
                record_attempt_device(session, run_id, attempt, device)
            insert_ignoring_duplicates(session, MetricChunkRow, chunk_values)
            if checkpoint is not None:
                now = self._server_now(session)  # once per checkpoint, not per chunk
                store_checkpoint(session, run_id, last_step, checkpoint, now)
            if validation is not None:
                store_validation(session, run_id, last_step, *validation)
            return ChunkAck(renewal.cancel_requested, renewal.lease_expires_at)

        return self._db.run(record, idempotent=True)

    def read_metric_arrays(
        self,
        run_id: int,
        *,
        first_step: int | None = None,
        last_step: int | None = None,
        every: int = 1,
    ) -> tuple[StepArray, FloatArray, FloatArray]:
        """Read a run's per-step metrics as arrays; only chunks overlapping the range are read.

        Args:
            run_id: the run.
            first_step: first step to return (inclusive); ``None`` from the start.
            last_step: last step to return (inclusive); ``None`` to the end.
            every: keep only steps where ``step % every == 0`` (so ``every=100`` gives steps
                100, 200, ...; steps are 1-based).

        Returns:
            ``(steps, loss, accuracy)``: int64 steps ascending, float32 loss and accuracy.
            NaN and infinities come back exactly as written.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidValueError: ``every < 1``.
        """
        if every < 1:
            raise InvalidValueError(f"every={every} must be at least 1")
        statement = _overlapping_chunks(run_id, first_step, last_step)

        def fetch(session: Session) -> list[tuple[int, int, bytes, bytes]]:
            rows = [(r[0], r[1], r[2], r[3]) for r in session.execute(statement)]
            if not rows:
                load_run(session, run_id)
            return rows

        rows = self._db.run(fetch, readonly=True, idempotent=True)
        steps, loss, accuracy = decode_chunks(run_id, rows)
        keep = wanted_steps(steps, first_step, last_step, every)
        return steps[keep], loss[keep], accuracy[keep]

    def read_metrics(
        self,
        run_id: int,
        *,
        first_step: int | None = None,
        last_step: int | None = None,
        every: int = 1,
    ) -> list[MetricRow]:
        """Read a run's metrics as one row per step; see :meth:`read_metric_arrays`.

        Raises:
            RunNotFoundError: no run has this id.
        """
        steps, loss, accuracy = self.read_metric_arrays(
            run_id, first_step=first_step, last_step=last_step, every=every
        )
        return [
            MetricRow(step, step_loss, step_accuracy)
            for step, step_loss, step_accuracy in zip(
                steps.tolist(), loss.tolist(), accuracy.tolist(), strict=True
            )
        ]


def _overlapping_chunks(
    run_id: int, first_step: int | None, last_step: int | None
) -> Select[int, int, bytes, bytes]:
    """Chunks of ``run_id`` that hold at least one step of the range, in step order."""
    statement = select(
        MetricChunkRow.first_step,
        MetricChunkRow.n_steps,
        MetricChunkRow.loss,
        MetricChunkRow.accuracy,
    ).where(MetricChunkRow.run_id == run_id)
    if last_step is not None:
        statement = statement.where(MetricChunkRow.first_step <= last_step)
    if first_step is not None:
        end = MetricChunkRow.first_step + MetricChunkRow.n_steps - 1
        statement = statement.where(end >= first_step)
    return statement.order_by(MetricChunkRow.first_step)


def _chunk_blobs(chunk: MetricChunk) -> tuple[bytes, bytes]:
    import numpy as np

    loss = np.asarray(chunk.loss)
    accuracy = np.asarray(chunk.accuracy)
    if loss.ndim != 1 or accuracy.shape != loss.shape or loss.shape[0] < 1:
        raise InvalidValueError(
            f"a metric chunk needs 1-D loss and accuracy of equal, non-zero length; got shapes "
            f"{loss.shape} and {accuracy.shape}"
        )
    if chunk.first_step < 1:
        raise InvalidValueError(f"first_step={chunk.first_step}: steps are 1-based")
    return loss.astype(F32_LE).tobytes(), accuracy.astype(F32_LE).tobytes()
