"""Checkpoints: weight blobs per (run, step), checksummed on write and verified on every read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import CheckpointNotFoundError, WeightsCorruptError
from storage.models import CheckpointRow
from storage.record_mapping import checkpoint_info
from storage.records import Checkpoint, CheckpointInfo
from storage.repository_base import (
    RepositoryBase,
    insert_ignoring_duplicates,
    load_run,
)

if TYPE_CHECKING:
    import numpy as np


def store_checkpoint(
    session: Session,
    run_id: int,
    step: int,
    arrays: Mapping[str, np.ndarray],
    now: datetime,
) -> bool:
    """Insert the checkpoint at ``step`` unless an intact one is there already (redelivery, resume).

    A corrupt checkpoint already at ``step`` is replaced: a run that resumed from an older
    checkpoint because that one was corrupt recomputes the same weights (training is
    deterministic), and leaving the damaged blob would make the next resume skip it again.

    Returns:
        True when a row was written.
    """
    from storage.weights_codec import encode_weights, sha256_hex  # NumPy: only with weights

    blob = encode_weights(arrays)
    checksum = sha256_hex(blob)
    values = {
        "run_id": run_id,
        "step": step,
        "weights": blob,
        "sha256": checksum,
        "size_bytes": len(blob),
        "created_at": now,
    }
    if insert_ignoring_duplicates(session, CheckpointRow, values):
        return True
    # Rare (a redelivered or resumed chunk), so reading the stored blob back costs little.
    existing = session.get(CheckpointRow, (run_id, step))
    if existing is None or _is_intact(existing):
        return False
    existing.weights, existing.sha256, existing.size_bytes = blob, checksum, len(blob)
    existing.created_at = now
    return True


def _is_intact(row: CheckpointRow) -> bool:
    from storage.weights_codec import decode_weights

    try:
        decode_weights(row.weights, row.sha256)
    except WeightsCorruptError:
        return False
    return True


class CheckpointStore(RepositoryBase):
    """Reading checkpoints. (They are written with metrics and at the end of a run.)"""

    def latest_checkpoint(self, run_id: int) -> Checkpoint | None:
        """The newest checkpoint of a run, verified; ``None`` when it has none.

        Raises:
            RunNotFoundError: no run has this id.
            WeightsCorruptError: the stored blob fails verification.
        """

        def newest(session: Session) -> CheckpointRow | None:
            statement = (
                select(CheckpointRow)
                .where(CheckpointRow.run_id == run_id)
                .order_by(CheckpointRow.step.desc())
                .limit(1)
            )
            row = session.scalars(statement).one_or_none()
            if row is None:
                load_run(session, run_id)
            return row

        row = self._db.run(newest, readonly=True, idempotent=True)
        return None if row is None else _verified(row)

    def get_checkpoint(self, run_id: int, step: int) -> Checkpoint:
        """The checkpoint of a run at ``step``, verified.

        Raises:
            CheckpointNotFoundError: the run has no checkpoint at this step.
            RunNotFoundError: no run has this id.
            WeightsCorruptError: the stored blob fails verification.
        """

        def at_step(session: Session) -> CheckpointRow:
            row = session.get(CheckpointRow, (run_id, step))
            if row is None:
                load_run(session, run_id)
                steps = session.scalars(
                    select(CheckpointRow.step)
                    .where(CheckpointRow.run_id == run_id)
                    .order_by(CheckpointRow.step.desc())
                    .limit(10)
                ).all()
                available = ", ".join(str(s) for s in sorted(steps)) or "none yet"
                raise CheckpointNotFoundError(
                    f"run {run_id} has no checkpoint at step {step}; its newest checkpoints are "
                    f"at steps: {available}"
                )
            return row

        return _verified(self._db.run(at_step, readonly=True, idempotent=True))

    def list_checkpoints(self, run_id: int) -> list[CheckpointInfo]:
        """A run's checkpoints, oldest first, without loading their blobs.

        Raises:
            RunNotFoundError: no run has this id.
        """
        columns = (
            CheckpointRow.run_id,
            CheckpointRow.step,
            CheckpointRow.sha256,
            CheckpointRow.size_bytes,
            CheckpointRow.created_at,
        )

        def listing(session: Session) -> list[CheckpointInfo]:
            statement = (
                select(*columns).where(CheckpointRow.run_id == run_id).order_by(CheckpointRow.step)
            )
            infos = [CheckpointInfo(*row) for row in session.execute(statement)]
            if not infos:
                load_run(session, run_id)
            return infos

        return self._db.run(listing, readonly=True, idempotent=True)


def _verified(row: CheckpointRow) -> Checkpoint:
    from storage.weights_codec import decode_weights

    try:
        arrays = decode_weights(row.weights, row.sha256)
    except WeightsCorruptError as error:
        raise type(error)(f"run {row.run_id}, checkpoint at step {row.step}: {error}") from error
    return Checkpoint(info=checkpoint_info(row), arrays=arrays)
