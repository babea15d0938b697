"""Storage benchmark (not a test): how fast metrics go in and out, and how many workers one
database can serve.

    python -m bench.storage_bench [--backend sqlite|postgres|both] [--json]

1. Latency: one run's 10,000 steps of metrics written as 10 chunks of 1,000 the way a worker
   writes them (``record_chunk``: fenced update, lease renewal, idempotent insert; one
   transaction each), then read back as 10,000 rows with ``read_metrics``. Median of several
   repetitions; target at most 20 ms each way. Also timed with a 784x10 checkpoint in every
   chunk's transaction.
2. Throughput: 8 processes at once, each a claimed run writing 1,000-step chunks as fast as it
   can for a fixed time. Metric steps and chunk rows stored per second, and how many workers
   training at ~10,000 steps/s that rate would serve.

Uses a throwaway PostgreSQL database ``trainq_bench`` on 127.0.0.1:5432 (user postgres) and a
SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import numpy as np

from storage import Database, JobKind, MetricChunk, Repository
from tests.services import create_postgres_database, drop_postgres_database, postgres_url

BENCH_DATABASE = "trainq_bench"
CHUNK_STEPS = 1_000
RUN_STEPS = 10_000
LEASE_TTL_S = 60.0
WORKER_STEPS_PER_S = 10_000  # a worker training the seed's model on one GPU or a few CPU cores
WEIGHTS = {"W": np.ones((784, 10), np.float32), "b": np.zeros(10, np.float32)}


@dataclass(frozen=True)
class BackendResult:
    """The figures for one backend."""

    backend: str
    write_ms: float
    read_ms: float
    write_with_checkpoints_ms: float
    processes: int
    seconds: float
    steps_per_s: float
    chunks_per_s: float
    workers_served: float


def claimed_run(repo: Repository, owner: str) -> int:
    """Create and claim a training run, as the CLI and a worker would."""
    run = repo.create_run(
        kind=JobKind.TRAIN, config={"steps": RUN_STEPS}, seed=0, queue="bench", max_attempts=3
    )
    claimed = repo.claim_run(run.id, owner=owner, worker_host=owner, lease_ttl_s=LEASE_TTL_S)
    assert claimed is not None
    return run.id


def chunks(rng: np.random.Generator) -> list[MetricChunk]:
    """One run's metrics as 10 chunks of 1,000 steps."""
    return [
        MetricChunk(
            first_step=first,
            loss=rng.random(CHUNK_STEPS, dtype=np.float32),
            accuracy=rng.random(CHUNK_STEPS, dtype=np.float32),
        )
        for first in range(1, RUN_STEPS + 1, CHUNK_STEPS)
    ]


def time_write(repo: Repository, run_id: int, run_chunks: list[MetricChunk], ckpt: bool) -> float:
    """Milliseconds to record every chunk of one run, each in its own transaction."""
    started = time.perf_counter()
    for chunk in run_chunks:
        repo.record_chunk(
            run_id, 1, chunk, lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS if ckpt else None
        )
    return (time.perf_counter() - started) * 1000


def measure_latency(url: str, repetitions: int) -> tuple[float, float, float]:
    """Median write, read, and write-with-checkpoints times (ms) for one 10,000-step run."""
    repo = Repository(Database(url))
    rng = np.random.default_rng(0)
    time_write(repo, claimed_run(repo, "warm-up"), chunks(rng), ckpt=False)  # connect, compile
    writes, reads, checkpointed = [], [], []
    for _ in range(repetitions):
        run_id = claimed_run(repo, "bench")
        writes.append(time_write(repo, run_id, chunks(rng), ckpt=False))
        started = time.perf_counter()
        rows = repo.read_metrics(run_id)
        reads.append((time.perf_counter() - started) * 1000)
        assert len(rows) == RUN_STEPS
        checkpointed.append(time_write(repo, claimed_run(repo, "ckpt"), chunks(rng), ckpt=True))
    return statistics.median(writes), statistics.median(reads), statistics.median(checkpointed)


def write_as_fast_as_possible(
    url: str, seconds: float, barrier: Barrier, results: Queue[tuple[int, float]]
) -> None:
    """One process: claim a run, then record 1,000-step chunks until ``seconds`` have passed."""
    repo = Repository(Database(url))
    run_id = claimed_run(repo, f"writer-{os.getpid()}")
    values = np.random.default_rng(os.getpid()).random(CHUNK_STEPS, dtype=np.float32)
    barrier.wait()
    started = time.perf_counter()
    written = 0
    while time.perf_counter() - started < seconds:
        chunk = MetricChunk(first_step=1 + written * CHUNK_STEPS, loss=values, accuracy=values)
        repo.record_chunk(run_id, 1, chunk, lease_ttl_s=LEASE_TTL_S)
        written += 1
    results.put((written, time.perf_counter() - started))


def measure_throughput(url: str, processes: int, seconds: float) -> tuple[float, float]:
    """Metric steps and chunk rows stored per second by ``processes`` concurrent writers."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results: Queue[tuple[int, float]] = context.Queue()
    workers = [
        context.Process(target=write_as_fast_as_possible, args=(url, seconds, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        if worker.exitcode != 0:
            raise RuntimeError(f"a writer process exited with {worker.exitcode}")
    chunks_per_s = sum(written / elapsed for written, elapsed in outcomes)
    return chunks_per_s * CHUNK_STEPS, chunks_per_s


def fresh_postgres_database() -> str:
    """(Re)create the throwaway benchmark database and return its URL."""
    create_postgres_database(BENCH_DATABASE)
    return postgres_url(BENCH_DATABASE)


def bench_backend(backend: str, url: str, args: argparse.Namespace) -> BackendResult:
    """Migrate ``url`` and take both measurements."""
    database = Database(url)
    database.upgrade()
    write_ms, read_ms, checkpointed_ms = measure_latency(url, args.repetitions)
    steps_per_s, chunks_per_s = measure_throughput(url, args.processes, args.seconds)
    database.dispose(close=True)
    return BackendResult(
        backend=backend,
        write_ms=round(write_ms, 2),
        read_ms=round(read_ms, 2),
        write_with_checkpoints_ms=round(checkpointed_ms, 2),
        processes=args.processes,
        seconds=args.seconds,
        steps_per_s=round(steps_per_s),
        chunks_per_s=round(chunks_per_s, 1),
        workers_served=round(steps_per_s / WORKER_STEPS_PER_S, 1),
    )


def run_backends(args: argparse.Namespace) -> list[BackendResult]:
    """Benchmark each requested backend in its own throwaway database."""
    results = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="trainq-bench-") as directory:
            url = f"sqlite:///{Path(directory) / 'bench.db'}"
            results.append(bench_backend("sqlite", url, args))
    if args.backend in ("postgres", "both"):
        try:
            results.append(bench_backend("postgresql", fresh_postgres_database(), args))
        finally:
            drop_postgres_database(BENCH_DATABASE)
    return results


def print_table(results: list[BackendResult]) -> None:
    """A small plain-text table of the figures."""
    print(
        f"storage benchmark on {platform.node()} ({os.cpu_count()} CPUs), "
        f"10 chunks x {CHUNK_STEPS} steps per run"
    )
    columns = [
        ("backend", 11, "{:<11}"),
        ("write 10k ms", 14, "{:>14.1f}"),
        ("read 10k ms", 13, "{:>13.1f}"),
        ("write+ckpt ms", 15, "{:>15.1f}"),
        ("procs", 7, "{:>7}"),
        ("steps/s", 12, "{:>12,.0f}"),
        ("chunks/s", 10, "{:>10,.0f}"),
        ("workers@10k/s", 15, "{:>15,.0f}"),
    ]
    header = "".join(
        f"{name:<{width}}" if i == 0 else f"{name:>{width}}"
        for i, (name, width, _) in enumerate(columns)
    )
    print(header)
    print("-" * len(header))
    for r in results:
        values = (
            r.backend,
            r.write_ms,
            r.read_ms,
            r.write_with_checkpoints_ms,
            r.processes,
            r.steps_per_s,
            r.chunks_per_s,
            r.workers_served,
        )
        print(
            "".join(fmt.format(value) for (_, _, fmt), value in zip(columns, values, strict=True))
        )


def main() -> None:
    """Parse arguments, run the benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repetitions", type=int, default=7, help="latency repetitions")
    parser.add_argument("--processes", type=int, default=8, help="concurrent writer processes")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput window per process")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = run_backends(args)
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
