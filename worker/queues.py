"""Every queue and task name in one place; the CLI publishes by name, so it never imports tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from worker.config import TrainConfig

TRAIN_QUEUE: Final = "train"
EVAL_QUEUE: Final = "eval"
GPU_QUEUE: Final = "gpu"
ALL_QUEUES: Final = (TRAIN_QUEUE, EVAL_QUEUE, GPU_QUEUE)

TRAIN_TASK: Final = "trainq.train_run"
EVAL_TASK: Final = "trainq.eval_run"


def queue_for(config: TrainConfig) -> str:
    """The queue a training run goes to: the one decision of where it may run.

    A run that asks for a GPU waits for a GPU worker; every other run takes the train queue.
    """
    from worker.config import Device

    return GPU_QUEUE if config.device is Device.GPU else TRAIN_QUEUE
