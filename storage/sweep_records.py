"""Plain frozen objects for sweeps, their trials, ASHA rung results and validation metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class SweepStatus(StrEnum):
    """Where a sweep is: starting trials, done, or stopped by a user."""

    RUNNING = "running"  # trials left to start or still active
    SUCCEEDED = "succeeded"  # every planned trial started and reached a terminal state
    CANCELLED = "cancelled"  # `trainq sweep cancel`: no trial starts any more

    @property
    def terminal(self) -> bool:
        """True for the states a sweep never leaves."""
        return self is not SweepStatus.RUNNING


@dataclass(frozen=True)
class SweepRecord:
    """A sweep as stored: its validated file (JSON) and its status."""

    id: int
    name: str | None
    status: SweepStatus
    spec: dict[str, Any]
    max_concurrent: int
    max_attempts: int
    created_at: datetime
    finished_at: datetime | None
    archived_at: datetime | None = None  # when it was archived with its trials; None: listed


@dataclass(frozen=True)
class PlannedTrial:
    """A trial to create: its parameters, its full validated config, its seed and queue."""

    params: dict[str, Any]
    config: dict[str, Any]
    seed: int
    queue: str


@dataclass(frozen=True)
class SweepTrial:
    """One planned trial of a sweep; ``run_id`` is set once its run was created."""

    sweep_id: int
    trial: int
    params: dict[str, Any]
    config: dict[str, Any]
    run_id: int | None


@dataclass(frozen=True)
class RungResult:
    """A trial's validation metric at an ASHA rung, and whether it continued past it."""

    sweep_id: int
    rung_step: int
    run_id: int
    trial: int
    objective: float
    continued: bool
    created_at: datetime


@dataclass(frozen=True)
class RungEntry:
    """One trial of a pack at a rung, for :meth:`RungStore.decide_rungs`."""

    run_id: int
    attempt: int  # the attempt the write is fenced on
    trial: int
    objective: float


@dataclass(frozen=True)
class RungDecision:
    """The answer of :meth:`RungStore.decide_rung` (and, per trial, of ``decide_rungs``)."""

    continued: bool
    rank: int  # 1-based rank among the results at the rung when the decision was taken
    results_at_rung: int  # how many results (this one included) the rung had then
    first_time: bool  # False when the decision had already been taken (a resumed trial)


@dataclass(frozen=True)
class ValidationMetric:
    """Loss and accuracy over a run's held-out images at one checkpoint step (NaN for NULL)."""

    run_id: int
    step: int
    loss: float
    accuracy: float
