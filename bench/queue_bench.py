"""Queue benchmark (not a test): what the queue adds on top of training.

    python -m bench.queue_bench [--json]

Needs the local Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432). Starts real `trainq worker`
processes from the compose file's command, against a throwaway database, and reports:

1. the wall time of `trainq train --wait` for the seed's job (10,000 steps, batch 128, lr 0.01) on a
   warm worker, against the training time the worker measured itself: the queue's overhead;
2. the throughput of 50 short runs (100 steps) through 2 workers, in runs/s;
3. worker memory: resident set size of each worker's main process and its job process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from storage.records import RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster, WorkerProcess, cluster_environment, wait_for

SEED_JOB = ("--steps", "10000", "--batch-size", "128", "--lr", "0.01", "--seed", "1")


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (the prefork job processes of a worker)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(text) for text in found.stdout.split()]


def measure_wait_overhead(cluster: Cluster, repetitions: int) -> dict[str, Any]:
    """`trainq train --wait` wall time versus the worker's own training time, on a warm worker."""
    warm_up = cluster.trainq("train", "--steps", "1000", "--seed", "0", "--wait", "--json")
    assert warm_up.returncode == 0, warm_up.stderr
    walls, trainings = [], []
    for _ in range(repetitions):
        started = time.perf_counter()
        result = cluster.trainq("train", *SEED_JOB, "--wait", "--json")
        walls.append(time.perf_counter() - started)
        assert result.returncode == 0, result.stderr
        trainings.append(float(json.loads(result.stdout)["summary"]["wall_s"]))
    wall, training = statistics.median(walls), statistics.median(trainings)
    return {
        "wall_s": wall,
        "training_s": training,
        "overhead_s": wall - training,
        "repetitions": repetitions,
    }


def measure_throughput(cluster: Cluster, runs: int) -> dict[str, Any]:
    """Submit ``runs`` runs of 100 steps and time until all have finished."""
    repository = cluster.repository()
    started = time.perf_counter()
    run_ids = []
    for seed in range(runs):
        result = cluster.trainq(
            "train",
            "--steps",
            "100",
            "--chunk-steps",
            "100",
            "--checkpoint-every",
            "100",
            "--seed",
            str(seed),
            "--no-wait",
            "--json",
        )
        assert result.returncode == 0, result.stderr
        run_ids.append(int(json.loads(result.stdout)["run_id"]))
    submitted = time.perf_counter() - started
    finished = [wait_for(run_id, repository, timeout_s=600) for run_id in run_ids]
    elapsed = time.perf_counter() - started
    assert all(run.status is RunStatus.SUCCEEDED for run in finished)
    # Worker side: from the first claim to the last finish, so CLI start-ups do not count.
    first_start = min(run.started_at for run in finished if run.started_at is not None)
    last_finish = max(run.finished_at for run in finished if run.finished_at is not None)
    worker_side_s = (last_finish - first_start).total_seconds()
    return {
        "runs": runs,
        "elapsed_s": elapsed,
        "runs_per_s": runs / elapsed,
        "submit_s": submitted,
        "worker_side_s": worker_side_s,
        "worker_side_runs_per_s": runs / worker_side_s,
        "re_executions": sum(run.attempt - 1 for run in finished),
    }


def measure_drain(cluster: Cluster, runs: int) -> dict[str, Any]:
    """Publish ``runs`` runs of 100 steps from here (no CLI start-ups); time until all finish."""
    from storage.records import JobKind
    from worker.cluster.publisher import Dispatcher
    from worker.config import TrainConfig

    repository = cluster.repository()
    dispatcher = Dispatcher(cluster.settings())
    started = time.perf_counter()
    run_ids = []
    for seed in range(runs):
        config = TrainConfig(steps=100, chunk_steps=100, checkpoint_every_steps=100, seed=seed)
        run = repository.create_run(
            kind=JobKind.TRAIN,
            config=config.model_dump(mode="json"),
            seed=seed,
            queue="train",
            max_attempts=3,
        )
        dispatcher.publish(repository, run)
        run_ids.append(run.id)
    finished = [wait_for(run_id, repository, timeout_s=600) for run_id in run_ids]
    elapsed = time.perf_counter() - started
    dispatcher.close()
    assert all(run.status is RunStatus.SUCCEEDED for run in finished)
    return {
        "runs": runs,
        "elapsed_s": elapsed,
        "runs_per_s": runs / elapsed,
        "re_executions": sum(run.attempt - 1 for run in finished),
    }


def measure_memory(workers: list[WorkerProcess]) -> list[dict[str, float]]:
    """RSS of each worker's main process and of its job process (after jobs ran)."""
    report = []
    for worker in workers:
        children = child_pids(worker.process.pid)
        report.append(
            {
                "main_rss_mib": rss_mib(worker.process.pid),
                "job_process_rss_mib": max(
                    (rss_mib(pid) for pid in children), default=float("nan")
                ),
            }
        )
    return report


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        cluster_environment(Path(scratch), f"trainq_bench_{os.getpid()}") as cluster,
    ):
        cluster.extra_env["TRAINQ_LEASE_TTL_S"] = "30"  # production-like settings for timings
        cluster.extra_env["TRAINQ_RECONCILE_EVERY_S"] = "30"
        cluster.extra_env["TRAINQ_REDISPATCH_AFTER_S"] = "120"
        first = cluster.start_worker(worker_command())
        overhead = measure_wait_overhead(cluster, args.repetitions)
        second = cluster.start_worker(worker_command())
        throughput = measure_throughput(cluster, args.runs)
        drain = measure_drain(cluster, args.runs)
        memory = measure_memory([first, second])
    results = {
        "wait_overhead": overhead,
        "throughput": throughput,
        "drain": drain,
        "memory": memory,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"trainq train --wait, seed job, warm worker (median of {overhead['repetitions']}):")
    print(
        f"  wall {overhead['wall_s']:.2f} s, training {overhead['training_s']:.2f} s, "
        f"overhead {overhead['overhead_s']:.2f} s (target <= 1 s)"
    )
    print(
        f"{throughput['runs']} runs x 100 steps through 2 workers: "
        f"{throughput['elapsed_s']:.1f} s, "
        f"{throughput['runs_per_s']:.2f} runs/s ({throughput['runs_per_s'] * 60:.0f} runs/min), "
        f"re-executions {throughput['re_executions']}; submitting took "
        f"{throughput['submit_s']:.1f} s (one `trainq train` process per run); worker side "
        f"(first claim to last finish) {throughput['worker_side_s']:.1f} s = "
        f"{throughput['worker_side_runs_per_s']:.2f} runs/s"
    )
    print(
        f"{drain['runs']} runs x 100 steps published at once, 2 workers: "
        f"{drain['elapsed_s']:.1f} s, "
        f"{drain['runs_per_s']:.2f} runs/s ({drain['runs_per_s'] * 60:.0f} runs/min), "
        f"re-executions {drain['re_executions']}"
    )
    for index, entry in enumerate(memory, 1):
        print(
            f"worker {index}: main process {entry['main_rss_mib']:.0f} MiB, "
            f"job process {entry['job_process_rss_mib']:.0f} MiB RSS"
        )


if __name__ == "__main__":
    main()
