"""Every queue and task name in one place; the CLI publishes by name, so it never imports tasks."""

from __future__ import annotations

from typing import Final

TRAIN_QUEUE: Final = "train"
EVAL_QUEUE: Final = "eval"
GPU_QUEUE: Final = "gpu"
ALL_QUEUES: Final = (TRAIN_QUEUE, EVAL_QUEUE, GPU_QUEUE)

TRAIN_TASK: Final = "trainq.train_run"
EVAL_TASK: Final = "trainq.eval_run"
