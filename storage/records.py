"""Plain frozen objects that leave the storage layer. ORM rows never do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from storage.errors import InvalidValueError

FloatArray = npt.NDArray[np.float32]

#: Tag keys end up in JSON paths of SQL queries, so they are kept to a safe alphabet.
TAG_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_TAG_VALUE_CHARS = 256


class RunStatus(StrEnum):
    """Where a job is in its life. See docs/architecture.md for the allowed transitions."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for the states a job never leaves."""
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class JobKind(StrEnum):
    """What a row of ``runs`` asks a worker to do."""

    TRAIN = "train"
    EVAL = "eval"


@dataclass(frozen=True)
class RunRecord:
    """One job (training or evaluation) as stored; ``attempt`` is the fencing token."""

    id: int
    kind: JobKind
    name: str | None
    status: RunStatus
    config: dict[str, Any]
    seed: int
    queue: str
    attempt: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    steps_done: int
    error: str | None
    worker_host: str | None
    device: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    published_at: datetime | None
    summary: dict[str, Any] | None
    tags: dict[str, str] = field(default_factory=dict)
    sweep_id: int | None = None  # the sweep this run is a trial of
    trial: int | None = None  # its trial number in that sweep (0-based)


@dataclass(frozen=True)
class MetricChunk:
    """Loss and accuracy of ``len(loss)`` consecutive steps starting at ``first_step`` (1-based)."""

    first_step: int
    loss: FloatArray
    accuracy: FloatArray

    @property
    def n_steps(self) -> int:
        """Number of steps the chunk covers."""
        return int(self.loss.shape[0])

    @property
    def last_step(self) -> int:
        """The chunk's last step (inclusive)."""
        return self.first_step + self.n_steps - 1


@dataclass(frozen=True)
class MetricRow:
    """One training step's metrics, as read back for users."""

    step: int
    loss: float
    accuracy: float


@dataclass(frozen=True)
class CheckpointInfo:
    """A stored checkpoint without its weights."""

    run_id: int
    step: int
    sha256: str
    size_bytes: int
    created_at: datetime


@dataclass(frozen=True)
class Checkpoint:
    """A stored checkpoint with its decoded, checksum-verified arrays (``W``, ``b``, ...)."""

    info: CheckpointInfo
    arrays: dict[str, FloatArray]


@dataclass(frozen=True)
class ChunkAck:
    """What the database says back after a chunk is recorded."""

    cancel_requested: bool
    lease_expires_at: datetime


@dataclass(frozen=True)
class EvaluationRecord:
    """An evaluation of one checkpoint of one training run over a whole split."""

    id: int
    run_id: int
    checkpoint_step: int
    split: str
    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion: list[list[int]]
    job_id: int | None
    created_at: datetime


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Validate tags and return them as a plain dict.

    Raises:
        InvalidValueError: a key is not ``[A-Za-z0-9_.-]{1,64}`` or a value is not a short string.
    """
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not TAG_KEY_PATTERN.fullmatch(key):
            raise InvalidValueError(
                f"tag key {key!r} must be 1-64 characters of letters, digits, '_', '.', '-'"
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE_CHARS:
            raise InvalidValueError(
                f"tag {key!r} must have a string value of at most {MAX_TAG_VALUE_CHARS} characters"
            )
        checked[key] = value
    return checked
