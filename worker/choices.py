"""The choices and defaults of a job's hyperparameters, without pydantic.

The CLI builds every command's options (choices and defaults) on each start, whatever command
runs; importing ``worker.config`` (pydantic) for that cost about 80 ms of a 0.5 s ``runs list``.
``worker.config`` validates with these same enums and defaults, so they live once, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

#: Steps between checkpoints, and per compiled call, when neither is given.
DEFAULT_CHECKPOINT_EVERY_STEPS: Final = 1_000
DEFAULT_CHUNK_STEPS: Final = 500


class Init(StrEnum):
    """How the initial weights are drawn."""

    NORMAL = "normal"  # standard normal, as the seed notebook does
    ZEROS = "zeros"


class Schedule(StrEnum):
    """Learning-rate schedule over the run's steps."""

    CONSTANT = "constant"
    COSINE = "cosine"  # cosine decay from learning_rate to 0 at the last step


class Device(StrEnum):
    """Where training runs."""

    AUTO = "auto"  # a GPU when TensorFlow sees one, else the CPU
    CPU = "cpu"
    GPU = "gpu"


class Dataset(StrEnum):
    """Registered datasets. Names come from here and are never treated as paths."""

    FASHION_MNIST = "fashion-mnist"


class Split(StrEnum):
    """Which part of the dataset an evaluation reads."""

    TEST = "test"
    TRAIN = "train"
    VAL = "val"  # the training images a run held out (--val-size); needs a run with val_size > 0


@dataclass(frozen=True)
class TrainDefaults:
    """The defaults of ``worker.config.TrainConfig`` (the seed notebook's job); each field is
    documented there."""

    learning_rate: float = 0.01
    batch_size: int = 128
    steps: int = 10_000
    init: Init = Init.NORMAL
    momentum: float = 0.0
    l2: float = 0.0
    schedule: Schedule = Schedule.CONSTANT
    checkpoint_every_steps: int = DEFAULT_CHECKPOINT_EVERY_STEPS
    chunk_steps: int = DEFAULT_CHUNK_STEPS
    device: Device = Device.AUTO
    dataset: Dataset = Dataset.FASHION_MNIST
    val_size: int = 0


TRAIN_DEFAULTS: Final = TrainDefaults()
