"""Runs per minute with 1, 2 and 4 worker containers of the compose cluster (not a test).

    python -m bench.cluster_scale_bench [--workers 1,2,4] [--runs 12] [--steps 10000] [--json]

Needs a Docker engine and the images of deploy/offline-images.sh (or a registry). Starts one
compose project (bench/compose_cluster.py: plain text, production settings, each worker limited
to 2 CPUs as docker-compose.yml's default) and, for each worker count: ``up -d --scale worker=N``,
one warm-up run per worker, then ``--runs`` runs of the seed's job (``--steps`` steps each)
submitted at once from this machine; the clock runs from the first submission to the last run's
end. Prints runs per minute per count and the ratio to one worker.

On a machine with fewer cores than workers the figure stays flat: each worker's TensorFlow
already uses both cores for one job, so more workers only share the same cores (and add their
own idle cost). The ratio is the point: it shows what scaling buys *per host*; more runs per
minute come from more hosts (deploy/worker-host/).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from api_cli.sdk import Client
from bench.compose_cluster import BenchCluster, bench_cluster
from storage.records import RunStatus


def submit_all(cluster: BenchCluster, count: int, steps: int, seed: int) -> list[int]:
    """Queue ``count`` runs of ``steps`` steps (seeds from ``seed``); their ids."""
    with Client(cluster.settings()) as client:
        return [client.submit(seed=seed + i, steps=steps).id for i in range(count)]


def runs_per_minute(cluster: BenchCluster, workers: int, runs: int, steps: int) -> dict[str, Any]:
    """One worker count: warm-up, then ``runs`` runs timed from submission to the last end."""
    cluster.use(tls=False, workers=workers)
    warm_up = submit_all(cluster, workers, steps, seed=1000 * workers)
    cluster.wait_terminal(warm_up)
    started = time.perf_counter()
    run_ids = submit_all(cluster, runs, steps, seed=1000 * workers + 100)
    finals = cluster.wait_terminal(run_ids)
    elapsed_s = time.perf_counter() - started
    failed = [r.id for r in finals if r.status is not RunStatus.SUCCEEDED]
    if failed:
        raise SystemExit(f"error: runs {failed} did not succeed with {workers} workers")
    return {
        "workers": workers,
        "runs": runs,
        "elapsed_s": round(elapsed_s, 1),
        "runs_per_min": round(60 * runs / elapsed_s, 1),
        "hosts_used": len({r.worker_host for r in finals}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma separated")
    parser.add_argument("--runs", type=int, default=12, help="timed runs per worker count")
    parser.add_argument("--steps", type=int, default=10_000, help="steps per run (the seed's)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    try:
        counts = [int(part) for part in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers {args.workers!r}: give whole numbers, e.g. 1,2,4")
    if not counts or min(counts) < 1 or args.runs < 1 or args.steps < 1:
        parser.error("--workers, --runs and --steps must be at least 1")
    with (
        tempfile.TemporaryDirectory() as directory,
        bench_cluster(Path(directory), "trainqscalebench") as cluster,
    ):
        rows = [runs_per_minute(cluster, n, args.runs, args.steps) for n in counts]
    base = rows[0]["runs_per_min"]
    for row in rows:
        row["ratio_to_first"] = round(row["runs_per_min"] / base, 2)
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(
            f"{row['workers']} worker(s): {row['runs']} runs in {row['elapsed_s']} s = "
            f"{row['runs_per_min']} runs/min ({row['ratio_to_first']}x {counts[0]} worker(s); "
            f"{row['hosts_used']} workers took runs)"
        )


if __name__ == "__main__":
    main()
