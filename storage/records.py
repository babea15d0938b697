"""Plain frozen objects that leave the storage layer. ORM rows never do."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # NumPy costs a tenth of a second to import: `trainq runs list` reads records, never arrays.
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]


def __getattr__(name: str) -> Any:
    """``FloatArray`` at run time (for modules that name it outside annotations)."""
    if name == "FloatArray":
        import numpy as np
        import numpy.typing as npt

        return npt.NDArray[np.float32]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """What a job asks a worker to do: a row of ``runs`` trains, one of ``evaluation_jobs``
    evaluates. The two tables have separate id sequences: a job is named by kind and id."""

    TRAIN = "train"
    EVAL = "eval"


@dataclass(frozen=True)
class RunRecord:
    """One training run as stored; ``attempt`` is the fencing token."""

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
    data_sha256: str | None = None  # the dataset version it trains on; None: built-in Fashion-MNIST
    note: str | None = None  # what a person wrote about the run (`trainq runs note`)
    archived_at: datetime | None = None  # when it was archived; None: not archived (listed)

    @property
    def label(self) -> str:
        """How people see this job's id: ``run 7``."""
        return f"run {self.id}"

    @property
    def train_summary(self) -> TrainSummary | None:
        """A training run's summary, parsed; None for eval jobs and unfinished runs."""
        if self.kind is not JobKind.TRAIN or self.summary is None:
            return None
        return TrainSummary.from_json(self.summary)


@dataclass(frozen=True)
class RemovedRuns:
    """What deleting runs (or a sweep with its trials) removed, or would remove (a dry run).

    The bytes are those of the blobs: per-step metric chunks and weights (checkpoints, final
    weights included). On PostgreSQL the rows are gone and autovacuum reuses their space; a
    SQLite file keeps its size until ``VACUUM`` (``Repository.reclaim_space``).
    """

    run_ids: tuple[int, ...]
    sweep_ids: tuple[int, ...]  # the sweep deleted with its trials (empty for runs alone)
    metric_bytes: int
    checkpoint_bytes: int
    checkpoints: int
    evaluations: int
    deleted: bool  # False: a dry run, nothing was removed

    @property
    def freed_bytes(self) -> int:
        """Bytes of blobs removed: metrics and weights."""
        return self.metric_bytes + self.checkpoint_bytes


@dataclass(frozen=True)
class EvaluationJobRecord:
    """One evaluation job as stored: evaluate run ``run_id``'s checkpoint on ``split``.

    Its id is in its own sequence (``eval 3`` is not ``run 3``); its result is the evaluation
    whose ``job_id`` is this id. The job fields are those of :class:`RunRecord`.
    """

    id: int
    run_id: int
    checkpoint_step: int | None  # None: the newest checkpoint (jobs queued before 0003 only)
    split: str
    status: RunStatus
    queue: str
    attempt: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    error: str | None
    worker_host: str | None
    device: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    published_at: datetime | None

    kind = JobKind.EVAL
    steps_done = 0  # an evaluation has no training steps
    sweep_id = None  # never a sweep trial

    @property
    def label(self) -> str:
        """How people see this job's id: ``eval 3``."""
        return f"eval {self.id}"


class AttemptOutcome(StrEnum):
    """How one attempt of a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    HANDED_BACK = "handed back"  # a graceful stop: the run went back to the queue
    LOST = "lost"  # its lease expired, or its job process died


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a training run (``Repository.list_attempts``).

    ``number`` counts the run's claims from 1; ``attempt`` is the fencing token the claim got
    (a hand-back takes it back, so the next claim shows the same ``attempt``).
    """

    run_id: int
    number: int
    attempt: int
    worker_host: str | None
    lease_owner: str | None
    device: str | None
    started_at: datetime
    ended_at: datetime | None  # None while it runs
    outcome: AttemptOutcome | None  # None while it runs
    steps_at_start: int
    steps_at_end: int | None
    error: str | None

    @property
    def duration_s(self) -> float | None:
        """Seconds from claim to end; None while the attempt runs."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


#: A job of either kind; ``kind`` says which table its id belongs to.
JobRecord = RunRecord | EvaluationJobRecord


#: The final loss and accuracy of a run are means over its last steps: one step's batch of 128
#: is too noisy to compare runs by, and the progress bar and the summary must show the same number.
FINAL_WINDOW_STEPS = 500


def final_window(steps_done: int) -> tuple[int, int]:
    """The steps ``(first, last)`` (1-based, inclusive) whose mean is a run's loss and accuracy."""
    return max(1, steps_done - FINAL_WINDOW_STEPS + 1), steps_done


def window_mean(values: FloatArray) -> float | None:
    """The mean of a window of per-step metrics; None when empty or not finite (diverged)."""
    import numpy as np

    if values.size == 0:
        return None
    mean = float(np.mean(values, dtype=np.float64))
    return mean if math.isfinite(mean) else None


@dataclass(frozen=True)
class TrainSummary:
    """What a finished training attempt measured: the one owner of a run's ``summary`` JSON.

    Two speeds, because they answer different questions: ``training_steps_per_s`` is the compiled
    steps alone (after the first chunk, which includes compilation) — the model's speed on this
    device; ``wall_steps_per_s`` divides the steps by the attempt's whole time (TensorFlow import,
    data loading, compilation, metric writes) — what a user waits for.
    """

    steps_done: int  # steps completed by the run (all attempts)
    steps_run: int  # steps run by this attempt (fewer than steps_done after a resume)
    completed: bool  # False when the attempt stopped early (cancelled)
    device: str  # e.g. "CPU:0" or "GPU:0 (NVIDIA H100 80GB HBM3)"
    wall_s: float  # the attempt's time from claim to its last chunk, set-up included
    wall_steps_per_s: float  # steps_run / wall_s
    training_steps_per_s: float | None  # compiled steps only; None when no step ran
    final_loss: float | None  # mean loss of the steps in final_window(steps_done); None if NaN
    final_accuracy: float | None  # mean accuracy over the same steps
    final_window_steps: int  # how many steps the final means cover (FINAL_WINDOW_STEPS or fewer)
    pruned: bool = False  # a sweep trial that ASHA stopped at a rung (its status stays SUCCEEDED)
    pruned_at_step: int | None = None  # the rung it stopped at
    #: The runs this attempt trained beside, in one compiled pack (``TrainConfig.pack``), by id.
    packed_with: tuple[int, ...] = ()
    #: What trained it: versions of trainq, TensorFlow, NumPy and Python (reproducibility).
    versions: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored as the run's ``summary`` (keys are the field names)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["versions"] = dict(self.versions)
        data["packed_with"] = list(self.packed_with)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainSummary:
        """Parse a stored summary; the one reader of ``runs.summary`` for training runs.

        Summaries written before trainq measured two speeds had one ``steps_per_s`` (the training
        call's wall time) and means over the last chunk; they read as wall speed and window.
        """
        wall = data.get("wall_steps_per_s", data.get("steps_per_s", 0.0))
        steps_run = int(data.get("steps_run", data.get("steps_done", 0)))
        return cls(
            steps_done=int(data.get("steps_done", 0)),
            steps_run=steps_run,
            completed=bool(data.get("completed", True)),
            device=str(data.get("device", "")),
            wall_s=float(data.get("wall_s", data.get("duration_s", 0.0))),
            wall_steps_per_s=float(wall or 0.0),
            training_steps_per_s=_optional_float(data.get("training_steps_per_s")),
            final_loss=_optional_float(data.get("final_loss")),
            final_accuracy=_optional_float(data.get("final_accuracy")),
            final_window_steps=int(data.get("final_window_steps", 0)),
            pruned=bool(data.get("pruned", False)),
            pruned_at_step=_optional_int(data.get("pruned_at_step")),
            packed_with=tuple(int(run) for run in data.get("packed_with") or ()),
            versions={str(k): str(v) for k, v in dict(data.get("versions") or {}).items()},
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


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
