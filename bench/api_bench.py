"""Python API benchmark (not a test): submitting many runs from one process against the CLI.

    python -m bench.api_bench [--runs 100] [--cli-runs 10] [--json]

Needs the local Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432); uses a throwaway
database and the Redis database of the integration tests (``TRAINQ_TEST_REDIS_DB``). No worker
is started: this measures submission only (validate, insert the QUEUED row, publish, record the
publish), the part a shell loop of ``trainq train --no-wait`` pays a process start-up for. Side by
side, in one run:

1. ``client.submit(...)`` called ``--runs`` times in a loop (one broker connection reused);
2. ``client.submit_many([...])`` with ``--runs`` configs (one producer for all publishes);
3. ``--cli-runs`` ``trainq train --no-wait`` processes, one after another, extrapolated linearly
   to ``--runs`` (each call is an independent process, so the time is linear in the count).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from api_cli.sdk import Client
from tests.integration.harness import Cluster, cluster_environment

SHORT_RUN = {"steps": 100, "chunk_steps": 100, "checkpoint_every_steps": 100}


def time_submit_loop(cluster: Cluster, runs: int) -> float:
    """Seconds for ``runs`` calls of ``client.submit`` from one process (client already open)."""
    with Client(cluster.settings()) as client:
        client.submit(seed=0, **SHORT_RUN)  # connect to the database and the broker first
        started = time.perf_counter()
        for seed in range(runs):
            client.submit(seed=seed, **SHORT_RUN)
        return time.perf_counter() - started


def time_submit_many(cluster: Cluster, runs: int) -> float:
    """Seconds for one ``client.submit_many`` of ``runs`` configs (client already open)."""
    with Client(cluster.settings()) as client:
        client.submit(seed=0, **SHORT_RUN)
        started = time.perf_counter()
        client.submit_many([{"seed": seed, **SHORT_RUN} for seed in range(runs)])
        return time.perf_counter() - started


def time_cli_calls(cluster: Cluster, calls: int) -> list[float]:
    """Wall seconds of each of ``calls`` ``trainq train --no-wait`` processes."""
    seconds = []
    for seed in range(calls):
        started = time.perf_counter()
        result = cluster.trainq(
            "train", "--steps", "100", "--chunk-steps", "100", "--checkpoint-every", "100",
            "--seed", str(seed), "--no-wait", "--json",
        )  # fmt: skip
        seconds.append(time.perf_counter() - started)
        assert result.returncode == 0, result.stderr
    return seconds


def main() -> None:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--cli-runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        cluster_environment(Path(tmp), f"trainq_api_bench_{os.getpid()}") as cluster,
    ):
        loop_s = time_submit_loop(cluster, args.runs)
        many_s = time_submit_many(cluster, args.runs)
        cli_calls = time_cli_calls(cluster, args.cli_runs)
    per_cli_call = statistics.median(cli_calls)
    report: dict[str, Any] = {
        "runs": args.runs,
        "api_submit_loop_s": loop_s,
        "api_submit_many_s": many_s,
        "cli_calls_measured": args.cli_runs,
        "cli_median_call_s": per_cli_call,
        "cli_extrapolated_s": per_cli_call * args.runs,
        "speed_up_loop": per_cli_call * args.runs / loop_s,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.runs} submissions to the cluster (Redis + PostgreSQL), no workers running:")
    print(f"  Python API, client.submit in a loop : {loop_s:6.2f} s  (target <= 2 s)")
    print(f"  Python API, client.submit_many      : {many_s:6.2f} s")
    print(
        f"  trainq train --no-wait processes    : {per_cli_call * args.runs:6.2f} s  "
        f"(median {per_cli_call:.2f} s per call over {args.cli_runs} calls, x {args.runs})"
    )
    print(f"  API loop is {report['speed_up_loop']:.0f}x faster")


if __name__ == "__main__":
    main()
