"""Reads for the Prometheus exporter: the whole queue's numbers in a few aggregate queries.

A scrape reads everything it exposes from here, at scrape time (nothing is counted in the
exporter's memory, so a restarted exporter or a second one reports the same numbers). Each
query aggregates in the database and returns a few rows per queue, whatever the number of runs:

* jobs by kind, queue and status, and the histogram of their queued-to-started wait (one
  statement per job table: ``count`` and ``CASE`` sums per wait bound, ``GROUP BY queue,
  status``);
* per queue, when its oldest QUEUED job was queued (a run handed back or taken over counts from
  the end of its latest attempt, so a run requeued a minute ago is not "hours old"): the
  ``runs.status`` index and the ``run_attempts`` primary key;
* ended attempts by queue and outcome (takeovers, hand-backs, failures);
* each RUNNING run with its open attempt (the ``runs.status`` index and the attempts' key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, SQLColumnExpression, and_, case, cast, func, select
from sqlalchemy.orm import Session

from storage.errors import InvalidValueError
from storage.models import EvaluationJob, Run, RunAttemptRow
from storage.records import AttemptOutcome, JobKind, RunStatus
from storage.repository_base import JobTable, RepositoryBase

#: Upper bounds (seconds) of the queued-to-started wait histogram: a job taken at once, within a
#: worker's warm-up, behind another run, or after an operator woke up.
WAIT_BUCKETS_S: tuple[float, ...] = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    10800.0,
    43200.0,
    86400.0,
)


@dataclass(frozen=True)
class JobCount:
    """How many jobs of one kind are in one status on one queue."""

    kind: JobKind
    queue: str
    status: RunStatus
    count: int


@dataclass(frozen=True)
class WaitHistogram:
    """Queued-to-started waits of the jobs of one kind and queue that have started.

    ``cumulative`` holds, for each bound of ``MetricsSnapshot.wait_bounds_s``, how many waited at
    most that long; ``count`` is every started job, ``sum_s`` their waits added up.
    """

    kind: JobKind
    queue: str
    cumulative: tuple[int, ...]
    count: int
    sum_s: float


@dataclass(frozen=True)
class AttemptOutcomeCount:
    """How many attempts of training runs on one queue ended with one outcome."""

    queue: str
    outcome: AttemptOutcome
    count: int


@dataclass(frozen=True)
class RunningRun:
    """A RUNNING training run and the pace of its current attempt.

    ``steps_per_s`` is the steps this attempt trained over the time since it was claimed (None
    until it has trained a step): it includes the job's start (data, compile), so it reads low
    for the first minute of an attempt.
    """

    run_id: int
    queue: str
    worker_host: str | None
    steps_done: int
    steps_per_s: float | None


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything the exporter exposes that the database knows, as of ``now``."""

    now: datetime
    job_counts: tuple[JobCount, ...]
    #: Seconds the oldest QUEUED job of each queue (training run or evaluation job) has waited.
    oldest_queued_age_s: dict[str, float]
    wait_bounds_s: tuple[float, ...]
    waits: tuple[WaitHistogram, ...]
    attempt_outcomes: tuple[AttemptOutcomeCount, ...]
    running: tuple[RunningRun, ...]


def _seconds_between(
    session: Session, start: SQLColumnExpression[Any], end: SQLColumnExpression[Any]
) -> ColumnElement[float]:
    """``end - start`` in seconds, computed by the database (both backends)."""
    if session.get_bind().dialect.name == "sqlite":
        # Timestamps are stored as ISO text; julianday keeps about 50 microseconds.
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)


class MetricsReads(RepositoryBase):
    """The exporter's reads (``trainq exporter``)."""

    def read_metrics_snapshot(
        self,
        *,
        wait_bounds_s: Sequence[float] = WAIT_BUCKETS_S,
        now: datetime | None = None,
    ) -> MetricsSnapshot:
        """Counts, waits, outcomes and running runs in one read-only transaction.

        Not retried through an outage: a scrape that cannot read says so at once, and the next
        scrape tries again.

        Raises:
            InvalidValueError: the bounds are not increasing positive numbers.
            StorageError: the database could not be read.
        """
        bounds = tuple(float(bound) for bound in wait_bounds_s)
        if not bounds or any(b <= a for a, b in zip((0.0, *bounds), bounds, strict=False)):
            raise InvalidValueError(f"wait_bounds_s={bounds!r} must be increasing and positive")
        moment = self._now(now)

        def read(session: Session) -> MetricsSnapshot:
            counts: list[JobCount] = []
            waits: list[WaitHistogram] = []
            for kind, table in ((JobKind.TRAIN, Run), (JobKind.EVAL, EvaluationJob)):
                kind_counts, kind_waits = _counts_and_waits(session, kind, table, bounds)
                counts += kind_counts
                waits += kind_waits
            return MetricsSnapshot(
                now=moment,
                job_counts=tuple(counts),
                oldest_queued_age_s=_oldest_queued_age_s(session, moment),
                wait_bounds_s=bounds,
                waits=tuple(waits),
                attempt_outcomes=_attempt_outcomes(session),
                running=_running_runs(session, moment),
            )

        return self._db.run(read, readonly=True)


def _counts_and_waits(
    session: Session, kind: JobKind, table: JobTable, bounds: tuple[float, ...]
) -> tuple[list[JobCount], list[WaitHistogram]]:
    """One statement: jobs per (queue, status, wait bucket), summed up here.

    Each row's bucket is the index of the first bound its wait fits under (one ``CASE`` that
    stops at the first match; a job not started, or slower than every bound, gets the last
    index), so the database evaluates one expression per row rather than one per bound.
    """
    wait = _seconds_between(session, table.created_at, table.started_at)
    bucket = case(
        *((wait <= bound, index) for index, bound in enumerate(bounds)), else_=len(bounds)
    )
    statement = select(
        table.queue,
        table.status,
        bucket,
        func.count(),
        func.count(table.started_at),
        func.coalesce(func.sum(wait), 0.0),
    ).group_by(table.queue, table.status, bucket)
    counts: dict[tuple[str, str], int] = {}
    per_bucket: dict[str, list[int]] = {}
    wait_sum_s: dict[str, float] = {}
    for queue, status, index, count, started, total_s in session.execute(statement):
        counts[(queue, status)] = counts.get((queue, status), 0) + int(count)
        if started:
            per_bucket.setdefault(queue, [0] * (len(bounds) + 1))[int(index)] += int(started)
            wait_sum_s[queue] = wait_sum_s.get(queue, 0.0) + float(total_s)
    waits = []
    for queue, in_bucket in sorted(per_bucket.items()):
        cumulative = tuple(sum(in_bucket[: index + 1]) for index in range(len(bounds)))
        waits.append(WaitHistogram(kind, queue, cumulative, sum(in_bucket), wait_sum_s[queue]))
    job_counts = [
        JobCount(kind, queue, RunStatus(status), count) for (queue, status), count in counts.items()
    ]
    return job_counts, waits


def _oldest_queued_age_s(session: Session, now: datetime) -> dict[str, float]:
    """Per queue, seconds since its longest-waiting QUEUED job was (re)queued."""
    latest_attempt_end = (
        select(func.max(RunAttemptRow.ended_at))
        .where(RunAttemptRow.run_id == Run.id)
        .scalar_subquery()
    )
    queued = RunStatus.QUEUED.value
    statements = (
        select(Run.queue, func.min(func.coalesce(latest_attempt_end, Run.created_at)))
        .where(Run.status == queued)
        .group_by(Run.queue),
        select(EvaluationJob.queue, func.min(EvaluationJob.created_at))
        .where(EvaluationJob.status == queued)
        .group_by(EvaluationJob.queue),
    )
    since: dict[str, datetime] = {}
    for statement in statements:
        for queue, queued_at in session.execute(statement):
            moment = _as_utc(session, queued_at)
            if moment is not None and (queue not in since or moment < since[queue]):
                since[queue] = moment
    return {queue: max(0.0, (now - moment).total_seconds()) for queue, moment in since.items()}


def _attempt_outcomes(session: Session) -> tuple[AttemptOutcomeCount, ...]:
    """Ended attempts of training runs by the run's queue and the attempt's outcome."""
    statement = (
        select(Run.queue, RunAttemptRow.outcome, func.count())
        .join(Run, Run.id == RunAttemptRow.run_id)
        .where(RunAttemptRow.outcome.is_not(None))
        .group_by(Run.queue, RunAttemptRow.outcome)
    )
    return tuple(
        AttemptOutcomeCount(queue, AttemptOutcome(outcome), int(count))
        for queue, outcome, count in session.execute(statement)
        if outcome is not None  # the WHERE says so; the column's type does not
    )


def _running_runs(session: Session, now: datetime) -> tuple[RunningRun, ...]:
    """Every RUNNING training run with the steps and start of its open attempt."""
    statement = (
        select(
            Run.id,
            Run.queue,
            Run.worker_host,
            Run.steps_done,
            RunAttemptRow.steps_at_start,
            RunAttemptRow.started_at,
        )
        .outerjoin(
            RunAttemptRow,
            and_(RunAttemptRow.run_id == Run.id, RunAttemptRow.ended_at.is_(None)),
        )
        .where(Run.status == RunStatus.RUNNING.value)
        .order_by(Run.id)
    )
    running: list[RunningRun] = []
    for run_id, queue, host, steps_done, steps_at_start, started_at in session.execute(statement):
        pace: float | None = None
        if started_at is not None:
            trained = int(steps_done) - int(steps_at_start)
            elapsed_s = (now - started_at).total_seconds()
            if trained > 0 and elapsed_s > 0:
                pace = trained / elapsed_s
        running.append(RunningRun(run_id, queue, host, int(steps_done), pace))
    return tuple(running)


def _as_utc(session: Session, value: Any) -> datetime | None:
    """A ``min()`` over a column comes back untyped: parse SQLite's text, attach UTC."""
    from storage.column_types import UTCDateTime

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, session.get_bind().dialect)
