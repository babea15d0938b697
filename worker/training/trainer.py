"""What a job trains with: ``train`` here, a seat in a pack, or a trainer process.

The job (``worker.jobs``) owns everything around the steps — the claim, the lease, chunk writes,
validation, rung decisions, hand-backs — and hands the steps themselves to a :class:`Trainer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from worker.config import TrainConfig
    from worker.data import FashionMnist
    from worker.training.state import ChunkReport, TrainingState, TrainResult
    from worker.training_data import TrainingData


class Trainer(Protocol):
    """``worker.training.train``'s arguments and result, and the chunk traces it has made."""

    def train(
        self,
        config: TrainConfig,
        data: TrainingData | FashionMnist,
        *,
        resume_from: TrainingState | None = None,
        on_chunk: Callable[[ChunkReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        """Train as ``worker.training.train`` does, with the same arguments, result and errors."""
        ...

    def traces_so_far(self) -> int:
        """Chunk functions traced (compiled) so far where this trainer trains."""
        ...


class InThisProcess:
    """``worker.training.train`` in this process (TensorFlow imported at the first call)."""

    def train(
        self,
        config: TrainConfig,
        data: TrainingData | FashionMnist,
        *,
        resume_from: TrainingState | None = None,
        on_chunk: Callable[[ChunkReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        from worker.training.loop import train

        return train(
            config, data, resume_from=resume_from, on_chunk=on_chunk, should_stop=should_stop
        )

    def traces_so_far(self) -> int:
        from worker.training.step import traces_so_far

        return traces_so_far()
