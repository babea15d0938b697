"""What a run is doing now, read from the database: latest metrics and its place in its queue.

The latest loss and accuracy are means over the same window as a finished run's final numbers
(``storage.records.final_window``), so a bar that ends never jumps to a different number.

A queued run's start is estimated by replaying its queue on the workers that consume it: each
worker slot is busy until its running job ends (remaining steps at the speed measured by recent
runs of that queue), then takes the queued jobs ahead in id order.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from api_cli.views import config_items

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from storage import Repository
    from storage.records import FloatArray, RunRecord

    StepArray = npt.NDArray[np.int64]

#: How many recent finished jobs of a queue its speed is measured from.
SPEED_SAMPLE_RUNS = 10


class MetricReader(Protocol):
    """Reads a run's stored per-step metrics: the repository, or the quick reader that gives None
    where its read failed (``storage.quick_reads``)."""

    def read_metric_arrays(
        self, run_id: int, *, first_step: int | None = None, last_step: int | None = None
    ) -> tuple[StepArray, FloatArray, FloatArray] | None:
        """``(steps, loss, accuracy)`` of ``run_id`` in the range."""


def latest_metrics(repository: Repository, run: RunRecord) -> tuple[float | None, float | None]:
    """Mean loss and accuracy of the run's newest stored steps (None before the first chunk)."""
    latest = _latest(repository, run)
    assert latest is not None  # the repository reads or raises
    return latest


def running_metrics(
    reader: MetricReader, runs: Iterable[RunRecord]
) -> dict[int, tuple[float | None, float | None]] | None:
    """``latest_metrics`` of every running run among ``runs``, by id; None when ``reader``'s read
    failed (then ask the repository)."""
    from storage.records import RunStatus

    found: dict[int, tuple[float | None, float | None]] = {}
    for run in runs:
        if run.status is RunStatus.RUNNING:
            latest = _latest(reader, run)
            if latest is None:
                return None
            found[run.id] = latest
    return found


def _latest(reader: MetricReader, run: RunRecord) -> tuple[float | None, float | None] | None:
    from storage.records import final_window, window_mean

    if run.steps_done == 0:
        return None, None
    first, last = final_window(run.steps_done)
    arrays = reader.read_metric_arrays(run.id, first_step=first, last_step=last)
    if arrays is None:
        return None
    _, loss, accuracy = arrays
    return window_mean(loss), window_mean(accuracy)


@dataclass(frozen=True)
class QueuePlace:
    """Where a queued run stands and when it should start."""

    queue: str
    position: int  # 1: the next job a free worker of this queue takes
    workers: int | None  # online workers that consume the queue; None when unknown
    starts_in_s: float | None  # None when no worker consumes it or no speed was measured yet

    def describe(self) -> str:
        """E.g. ``"2nd in queue 'train', starts in ~40 s"``."""
        text = f"{_ordinal(self.position)} in queue {self.queue!r}"
        if self.workers == 0:
            return f"{text}; no online worker consumes it"
        if self.starts_in_s is None:
            return text
        return f"{text}, starts in ~{format_duration(self.starts_in_s)}"


def place_in_queue(repository: Repository, run: RunRecord, workers: int | None) -> QueuePlace:
    """Estimate where queued ``run`` stands, given how many online workers consume its queue."""
    from storage.records import RunStatus

    # Training runs only: evaluation jobs have a queue of their own ('eval').
    active = repository.list_runs(statuses=[RunStatus.QUEUED, RunStatus.RUNNING])
    same_queue = [job for job in active if job.queue == run.queue]
    ahead = sorted(
        (job for job in same_queue if job.status is RunStatus.QUEUED and job.id < run.id),
        key=lambda job: job.id,
    )
    running = [job for job in same_queue if job.status is RunStatus.RUNNING]
    place = QueuePlace(run.queue, len(ahead) + 1, workers, None)
    if not workers:
        return place
    seconds_per = _job_seconds(repository, run.queue)
    if seconds_per is None:
        return place
    busy_until = [seconds_per(job, remaining=True) for job in running]
    return QueuePlace(
        run.queue,
        place.position,
        workers,
        _replay(busy_until, [seconds_per(job, remaining=False) for job in ahead], workers),
    )


class _JobSeconds:
    """Seconds a job takes on this queue, from the speed of its recent finished jobs."""

    def __init__(self, steps_per_s: float) -> None:
        self._steps_per_s = steps_per_s

    def __call__(self, job: RunRecord, *, remaining: bool) -> float:
        steps = int(config_items(job).get("steps", 0))
        left = steps - job.steps_done if remaining else steps
        return max(left, 0) / self._steps_per_s if self._steps_per_s else 0.0


def _job_seconds(repository: Repository, queue: str) -> _JobSeconds | None:
    from storage.records import RunStatus

    recent = [
        job
        for job in repository.list_runs(statuses=[RunStatus.SUCCEEDED], limit=100)
        if job.queue == queue
    ][:SPEED_SAMPLE_RUNS]
    speeds = [s.wall_steps_per_s for job in recent if (s := job.train_summary) and s.steps_run]
    return _JobSeconds(statistics.median(speeds)) if speeds else None


def _replay(busy_until_s: Sequence[float], ahead_s: Sequence[float], workers: int) -> float:
    """When a worker slot frees up for the job after ``ahead_s``, slots busy ``busy_until_s``."""
    slots = sorted(busy_until_s)[:workers] + [0.0] * max(0, workers - len(busy_until_s))
    heapq.heapify(slots)
    for duration in ahead_s:
        heapq.heappush(slots, heapq.heappop(slots) + duration)
    return slots[0]


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def format_duration(seconds: float) -> str:
    """``42`` → ``"42 s"``, ``150`` → ``"2 min 30 s"``, ``7300`` → ``"2 h 1 min"``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
