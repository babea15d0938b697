"""The metric families ``trainq exporter`` exposes, built from one database snapshot and one
broker reading. Every name here is listed in ``docs/cluster.md`` ("Prometheus").

Conventions: the ``trainq_`` prefix, base units (seconds), ``_total`` on counters. Gauges of a
queue are written for every known queue, zero included, so an alert on "no consumer" or a KEDA
trigger sees 0 rather than no series. Counters are the database's own counts of ended attempts
(deleting runs lowers them; Prometheus's ``rate()`` takes that as a counter reset).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from api_cli.exporter.broker_reading import BrokerReading
from storage.metrics_reads import MetricsSnapshot
from storage.records import AttemptOutcome, JobKind, RunStatus

#: The counters named after one outcome of an attempt (all of them: ``trainq_attempts_ended``).
_NAMED_OUTCOMES = (
    (
        "trainq_takeovers",
        AttemptOutcome.LOST,
        "Attempts of training runs taken over after their "
        "worker was lost (lease expired or job process died).",
    ),
    (
        "trainq_hand_backs",
        AttemptOutcome.HANDED_BACK,
        "Attempts of training runs handed back "
        "to the queue by a stopping worker (checkpointed; the attempt is not spent).",
    ),
    ("trainq_run_failures", AttemptOutcome.FAILED, "Training runs that ended FAILED."),
)


def _label_value(outcome: AttemptOutcome) -> str:
    """An outcome as a label value: ``handed back`` is ``handed_back``."""
    return outcome.value.replace(" ", "_")


def database_families(snapshot: MetricsSnapshot, queues: Iterable[str]) -> list[Metric]:
    """Jobs, queue depth and age, waits, attempt outcomes and paces from the database."""
    known = sorted(
        set(queues)
        | {count.queue for count in snapshot.job_counts}
        | set(snapshot.oldest_queued_age_s)
    )
    return [
        *_job_families(snapshot, known),
        _wait_family(snapshot),
        *_outcome_families(snapshot, known),
        *_pace_families(snapshot),
    ]


def _job_families(snapshot: MetricsSnapshot, queues: list[str]) -> list[Metric]:
    counts = {(c.kind, c.queue, c.status): c.count for c in snapshot.job_counts}
    jobs = GaugeMetricFamily(
        "trainq_jobs",
        "Jobs in the database by kind (train: training runs, eval: evaluation jobs), queue and "
        "status.",
        labels=["kind", "queue", "status"],
    )
    depth = GaugeMetricFamily(
        "trainq_queue_depth",
        "QUEUED jobs (training runs and evaluation jobs) in the database: trainq's own queue "
        "depth, whatever the broker holds.",
        labels=["queue"],
    )
    oldest = GaugeMetricFamily(
        "trainq_queue_oldest_age_seconds",
        "Seconds the longest-waiting QUEUED job of the queue has waited since it was queued "
        "(or requeued); 0 when the queue is empty.",
        labels=["queue"],
    )
    for queue in queues:
        for kind in JobKind:
            for status in RunStatus:
                jobs.add_metric(
                    [kind.value, queue, status.value], counts.get((kind, queue, status), 0)
                )
        queued = sum(counts.get((kind, queue, RunStatus.QUEUED), 0) for kind in JobKind)
        depth.add_metric([queue], queued)
        oldest.add_metric([queue], snapshot.oldest_queued_age_s.get(queue, 0.0))
    return [jobs, depth, oldest]


def _wait_family(snapshot: MetricsSnapshot) -> Metric:
    family = HistogramMetricFamily(
        "trainq_queue_wait_seconds",
        "Seconds from a job's creation to its first start, for every job that has started.",
        labels=["kind", "queue"],
    )
    for wait in snapshot.waits:
        buckets = [
            (_le(bound), float(count))
            for bound, count in zip(snapshot.wait_bounds_s, wait.cumulative, strict=True)
        ]
        buckets.append(("+Inf", float(wait.count)))
        family.add_metric([wait.kind.value, wait.queue], buckets, sum_value=wait.sum_s)
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


def _outcome_families(snapshot: MetricsSnapshot, queues: list[str]) -> list[Metric]:
    counts = {(c.queue, c.outcome): c.count for c in snapshot.attempt_outcomes}
    queues = sorted(set(queues) | {queue for queue, _ in counts})
    families: list[Metric] = []
    for name, outcome, documentation in _NAMED_OUTCOMES:
        family = CounterMetricFamily(name, documentation, labels=["queue"])
        for queue in queues:
            family.add_metric([queue], counts.get((queue, outcome), 0))
        families.append(family)
    ended = CounterMetricFamily(
        "trainq_attempts_ended",
        "Ended attempts of training runs by queue and outcome (succeeded, failed, cancelled, "
        "handed_back, lost): the denominator of failure and takeover rates.",
        labels=["queue", "outcome"],
    )
    for queue in queues:
        for outcome in AttemptOutcome:
            ended.add_metric([queue, _label_value(outcome)], counts.get((queue, outcome), 0))
    families.append(ended)
    return families


def _pace_families(snapshot: MetricsSnapshot) -> list[Metric]:
    per_run = GaugeMetricFamily(
        "trainq_run_steps_per_second",
        "Steps per second of each RUNNING training run over its current attempt (from its "
        "claim, so the job's start-up is included).",
        labels=["run_id", "queue", "host"],
    )
    steps = GaugeMetricFamily(
        "trainq_run_steps_done",
        "Steps stored so far by each RUNNING training run (rate() of it is the recent pace).",
        labels=["run_id", "queue", "host"],
    )
    per_host: defaultdict[str, float] = defaultdict(float)
    for run in snapshot.running:
        host = run.worker_host or "unknown"
        labels = [str(run.run_id), run.queue, host]
        steps.add_metric(labels, run.steps_done)
        pace = run.steps_per_s or 0.0
        per_run.add_metric(labels, pace)
        per_host[host] += pace
    per_worker = GaugeMetricFamily(
        "trainq_worker_steps_per_second",
        "Steps per second of the RUNNING training runs on each worker host, added up.",
        labels=["host"],
    )
    for host, pace in sorted(per_host.items()):
        per_worker.add_metric([host], pace)
    return [per_run, steps, per_worker]


def broker_families(reading: BrokerReading, queues: Iterable[str]) -> list[Metric]:
    """The broker's list lengths and the workers online and busy per queue."""
    known = sorted(set(queues) | set(reading.list_lengths) | set(reading.consumers))
    length = GaugeMetricFamily(
        "trainq_broker_queue_length",
        "Messages waiting in the queue's list on the broker (those a worker reserved are not "
        "counted).",
        labels=["queue"],
    )
    online = GaugeMetricFamily(
        "trainq_workers_online",
        "Workers that answered the census and consume the queue.",
        labels=["queue"],
    )
    busy = GaugeMetricFamily(
        "trainq_workers_busy",
        "Workers consuming the queue that are running at least one job (of any queue).",
        labels=["queue"],
    )
    for queue in known:
        consumers = reading.consumers.get(queue, frozenset())
        length.add_metric([queue], reading.list_lengths.get(queue, 0))
        online.add_metric([queue], len(consumers))
        busy.add_metric([queue], len(consumers & reading.busy))
    return [length, online, busy]


def health_families(
    *, database_up: bool, broker_up: bool | None, read_seconds: dict[str, float]
) -> list[Metric]:
    """Whether each source answered this scrape, and how long reading it took."""
    database = GaugeMetricFamily(
        "trainq_database_up", "1 if this scrape read the database, else 0.", value=database_up
    )
    families: list[Metric] = [database]
    if broker_up is not None:
        families.append(
            GaugeMetricFamily(
                "trainq_broker_up",
                "1 if this scrape read the broker and the worker census, else 0 (absent when "
                "no broker is configured).",
                value=broker_up,
            )
        )
    seconds = GaugeMetricFamily(
        "trainq_exporter_read_seconds",
        "Seconds this scrape spent reading each source (database, broker).",
        labels=["source"],
    )
    for source, spent in sorted(read_seconds.items()):
        seconds.add_metric([source], spent)
    families.append(seconds)
    return families
