"""Exporter benchmark (not a test): how long a scrape of ``trainq exporter`` takes with 10,000
training runs stored, beside the naive way of getting the same counts.

    python -m bench.exporter_bench [--backend sqlite|postgres|both] [--runs N] [--json]

The store holds ``--runs`` training runs (default 10,000): 90% succeeded, 4% failed, 2%
cancelled, 2% queued (half on the gpu queue), 2% running, each started one with one attempt
(every tenth with a second, the first lost or handed back), and 500 evaluation jobs. Rows are
bulk-inserted with SQL: only how the benchmark gets there fast.

Figures, each the median of 25 after 3 warm-up ones, side by side in one run:

* ``snapshot_ms``: ``Repository.read_metrics_snapshot`` (the exporter's whole database read);
* ``scrape_ms``: the exporter's ``/metrics`` body, built by ``prometheus_client.generate_latest``
  from the collector on a read-only repository, as ``trainq exporter`` opens it (no broker: the
  broker's part is bounded by ``--census-timeout``, 1 s by default, and runs beside this);
* ``naive_ms``: reading every run and evaluation job through ``list_runs`` /
  ``list_evaluation_jobs`` and counting in Python (what the exporter would do without
  ``storage.metrics_reads``), and the ratio. Goal: ``scrape_ms`` at most 100.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import insert

from api_cli.exporter.collector import TrainqCollector
from storage import Database, Repository
from storage.models import EvaluationJob, Run, RunAttemptRow
from tests.services import create_postgres_database, drop_postgres_database, postgres_url

BENCH_DATABASE = "trainq_bench_exporter"
WARM_UP = 3
REPEATS = 25
EVAL_JOBS = 500


def _status_of(index: int) -> str:
    share = index % 100
    if share < 90:
        return "succeeded"
    return {90: "failed", 91: "failed", 92: "failed", 93: "failed", 94: "cancelled"}.get(
        share, ("cancelled", "queued", "queued", "running", "running")[share % 5]
    )


def fill(database: Database, runs: int) -> None:
    """``runs`` training runs in the mix above, their attempts, and the evaluation jobs."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    run_rows: list[dict[str, Any]] = []
    attempt_rows: list[dict[str, Any]] = []
    for index in range(runs):
        status = _status_of(index)
        created = start + timedelta(seconds=index * 30)
        started = None if status == "queued" else created + timedelta(seconds=index % 600)
        queue = "gpu" if status == "queued" and index % 2 else "train"
        run_rows.append(
            {
                "id": index + 1,
                "kind": "train",
                "status": status,
                "queue": queue,
                "config": {"steps": 10_000},
                "seed": index,
                "attempt": 0 if started is None else 1,
                "max_attempts": 3,
                "steps_done": 0 if started is None else 5_000,
                "tags": {},
                "created_at": created,
                "started_at": started,
                "worker_host": None if started is None else f"host-{index % 8}",
                "cancel_requested": False,
            }
        )
        if started is None:
            continue
        number = 1
        if index % 10 == 0:
            outcome = "lost" if index % 20 == 0 else "handed back"
            attempt_rows.append(_attempt(index + 1, number, started, outcome))
            number = 2
        ended = None if status == "running" else status
        attempt_rows.append(_attempt(index + 1, number, started, ended))
    eval_rows = [
        {
            "id": job + 1,
            "run_id": job + 1,
            "status": "succeeded" if job % 5 else "queued",
            "queue": "eval",
            "attempt": 1,
            "max_attempts": 3,
            "checkpoint_step": 100,
            "split": "test",
            "created_at": start,
            "started_at": start + timedelta(seconds=2) if job % 5 else None,
            "cancel_requested": False,
        }
        for job in range(min(EVAL_JOBS, runs))
    ]
    with database.engine.begin() as connection:
        connection.execute(insert(Run), run_rows)
        connection.execute(insert(RunAttemptRow), attempt_rows)
        connection.execute(insert(EvaluationJob), eval_rows)
        if database.dialect_name == "postgresql":
            connection.exec_driver_sql("ANALYZE")


def _attempt(run_id: int, number: int, started: datetime, outcome: str | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "number": number,
        "attempt": number,
        "worker_host": "host-a",
        "lease_owner": "host-a:1:x",
        "started_at": started,
        "ended_at": None if outcome is None else started + timedelta(seconds=60),
        "outcome": outcome,
        "steps_at_start": 0,
        "steps_at_end": None if outcome is None else 5_000,
    }


def naive_counts(repository: Repository) -> dict[tuple[str, str], int]:
    """The same counts through the listing API: every row becomes a Python record."""
    counts: dict[tuple[str, str], int] = {}
    for run in repository.list_runs(kind=None):
        counts[(run.queue, run.status.value)] = counts.get((run.queue, run.status.value), 0) + 1
    for job in repository.list_evaluation_jobs():
        counts[(job.queue, job.status.value)] = counts.get((job.queue, job.status.value), 0) + 1
    return counts


def median_ms(work: Callable[[], object]) -> float:
    """The median wall time of ``work`` in milliseconds."""
    for _ in range(WARM_UP):
        work()
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(url: str, runs: int) -> dict[str, float]:
    """Fill a fresh database at ``url`` and time the three reads on it."""
    writable = Database(url)
    writable.upgrade()
    fill(writable, runs)
    writable.dispose(close=True)
    repository = Repository(Database(url, read_only=True))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TrainqCollector(repository, broker=None))
    figures = {
        "snapshot_ms": median_ms(repository.read_metrics_snapshot),
        "scrape_ms": median_ms(lambda: generate_latest(registry)),
        "naive_ms": median_ms(lambda: naive_counts(repository)),
    }
    figures["naive_over_scrape"] = figures["naive_ms"] / figures["scrape_ms"]
    return figures


def main() -> None:
    """Run the benchmark on the chosen backends and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            results["sqlite"] = measure(f"sqlite:///{Path(directory) / 'bench.db'}", args.runs)
    if args.backend in ("postgres", "both"):
        create_postgres_database(BENCH_DATABASE)
        try:
            results["postgres"] = measure(postgres_url(BENCH_DATABASE), args.runs)
        finally:
            drop_postgres_database(BENCH_DATABASE)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for backend, figures in results.items():
        print(
            f"{backend:8} {args.runs} runs: snapshot {figures['snapshot_ms']:.1f} ms, "
            f"scrape {figures['scrape_ms']:.1f} ms, naive listing {figures['naive_ms']:.1f} ms "
            f"({figures['naive_over_scrape']:.1f}x the scrape)"
        )


if __name__ == "__main__":
    main()
