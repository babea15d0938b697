"""Metric chunks as stored: float32 little-endian blobs, one row per run of steps.

Free of SQLAlchemy, so the quick read path (``storage.quick_reads``) decodes chunks exactly as
the repository does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.errors import StorageError

if TYPE_CHECKING:
    # NumPy is imported where metrics are read, not by commands that only list runs.
    import numpy as np
    import numpy.typing as npt

    from storage.records import FloatArray

    StepArray = npt.NDArray[np.int64]

#: Chunk blobs are float32 little-endian whatever the machine.
F32_LE = "<f4"

#: A chunk as read: ``(first_step, n_steps, loss blob, accuracy blob)``.
ChunkRow = tuple[int, int, bytes, bytes]


def decode_chunks(run_id: int, rows: list[ChunkRow]) -> tuple[StepArray, FloatArray, FloatArray]:
    """``(steps, loss, accuracy)`` of chunks read in step order; a step stored twice counts once.

    Raises:
        StorageError: a chunk's blobs do not hold its number of steps (a corrupt row).
    """
    import numpy as np

    if not rows:
        empty = np.empty(0, dtype=np.float32)
        return np.empty(0, dtype=np.int64), empty, empty.copy()
    for first, n_steps, loss_blob, accuracy_blob in rows:
        if len(loss_blob) != 4 * n_steps or len(accuracy_blob) != 4 * n_steps:
            raise StorageError(
                f"run {run_id}: the metric chunk at step {first} is corrupt ({n_steps} steps but "
                f"{len(loss_blob)} and {len(accuracy_blob)} bytes)"
            )
    steps = np.concatenate([np.arange(f, f + n, dtype=np.int64) for f, n, _, _ in rows])
    loss = np.frombuffer(b"".join(r[2] for r in rows), dtype=F32_LE).astype(np.float32)
    accuracy = np.frombuffer(b"".join(r[3] for r in rows), dtype=F32_LE).astype(np.float32)
    if np.any(np.diff(steps) <= 0):
        # Overlapping chunks (a resume with another chunk size): the earliest write wins.
        steps, first_index = np.unique(steps, return_index=True)
        loss, accuracy = loss[first_index], accuracy[first_index]
    return steps, loss, accuracy


def wanted_steps(
    steps: StepArray, first_step: int | None, last_step: int | None, every: int
) -> npt.NDArray[np.bool_]:
    """Which ``steps`` lie in ``[first_step, last_step]`` and are multiples of ``every``."""
    import numpy as np

    keep = np.ones(steps.shape, dtype=bool)
    if first_step is not None:
        keep &= steps >= first_step
    if last_step is not None:
        keep &= steps <= last_step
    if every > 1:
        keep &= steps % every == 0
    return keep
