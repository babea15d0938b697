"""Plain objects the Python API returns besides storage's records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Metrics:
    """A run's per-step metrics as NumPy arrays of equal length, in step order."""

    run_id: int
    #: Step numbers, 1-based, ascending (int64).
    steps: npt.NDArray[np.int64]
    #: Cross-entropy of each step's batch, before that step's update (float32; NaN kept).
    loss: npt.NDArray[np.float32]
    #: Accuracy on each step's batch, before that step's update (float32).
    accuracy: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.steps.shape[0])
