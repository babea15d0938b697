"""TLS against plain text on the same compose cluster, in one run (not a test).

    python -m bench.tls_bench [--rounds 2] [--trains 3] [--submissions 100] [--json]

Needs a Docker engine and the images of deploy/offline-images.sh (or a registry). Starts one
compose project (bench/compose_cluster.py: test secrets, one worker of 2 CPUs, production
settings) and measures it first in plain text (deploy/compose.host.yml publishes redis and
postgres on loopback), then after ``up -d`` with docker-compose.tls.yml in that file's place: the
same project and volumes, Redis and PostgreSQL TLS only, the worker and this machine's client
verifying both against the CA. In each mode, from this machine:

1. ``--submissions`` calls of ``client.submit`` from one process, the client already connected
   (the worker scaled to 0 so that nothing trains meanwhile; the runs are cancelled after);
2. the seed's job through the queue: ``trainq train --wait`` (process start to exit, so the CLI's
   start-up too), one warm-up and then ``--trains`` timed, with the worker's own attempt time.

The modes alternate ``--rounds`` times (plain, TLS, plain, TLS, ...), so that a machine busy
with other work in one stretch weighs on both alike. Prints the medians over the rounds and the
TLS / plain-text ratios. Always ends with ``down -v``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from api_cli.sdk import Client
from bench.compose_cluster import BenchCluster, bench_cluster

SHORT_RUN: dict[str, Any] = {"steps": 100, "chunk_steps": 100, "checkpoint_every_steps": 100}


def time_submissions(cluster: BenchCluster, count: int) -> float:
    """Seconds for ``count`` ``client.submit`` calls (one warm-up submit first); all cancelled."""
    with Client(cluster.settings()) as client:
        run_ids = [client.submit(seed=0, **SHORT_RUN).id]  # connects to both servers
        started = time.perf_counter()
        for seed in range(count):
            run_ids.append(client.submit(seed=seed, **SHORT_RUN).id)
        seconds = time.perf_counter() - started
        for run_id in run_ids:
            client.cancel(run_id)
    return seconds


def time_seed_job(cluster: BenchCluster) -> dict[str, float]:
    """``trainq train --wait`` of the seed's job: wall, the worker's attempt, training alone."""
    started = time.perf_counter()
    result = cluster.trainq("train", "--wait", "--json")
    wall_s = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"error: trainq train --wait exited {result.returncode}: {result.stderr}")
    run_id = int(json.loads(result.stdout)["run_id"])
    with cluster.repository() as repository:
        summary = repository.get_run(run_id).train_summary
    assert summary is not None and summary.training_steps_per_s
    return {
        "wall_s": wall_s,
        "worker_attempt_s": summary.wall_s,
        "training_s": summary.steps_run / summary.training_steps_per_s,
    }


def measure(cluster: BenchCluster, *, tls: bool, trains: int, submissions: int) -> dict[str, Any]:
    """Both figures in one mode, one round."""
    cluster.use(tls=tls, workers=0)
    submit_s = time_submissions(cluster, submissions)
    cluster.use(tls=tls, workers=1)
    time_seed_job(cluster)  # warm-up: the cancelled runs' messages drain, the worker compiles
    return {"submit_s": submit_s, "jobs": [time_seed_job(cluster) for _ in range(trains)]}


def summarize(rounds: list[dict[str, Any]], submissions: int) -> dict[str, Any]:
    """One mode's rounds: the medians, and every value."""
    submits = [r["submit_s"] for r in rounds]
    jobs = [job for r in rounds for job in r["jobs"]]
    return {
        "submissions": submissions,
        "submit_s": [round(s, 3) for s in submits],
        "submit_median_s": round(statistics.median(submits), 3),
        "submit_ms_each": round(1000 * statistics.median(submits) / submissions, 2),
        "seed_job_wall_s": [round(job["wall_s"], 2) for job in jobs],
        "seed_job_wall_median_s": round(statistics.median(j["wall_s"] for j in jobs), 2),
        "worker_attempt_median_s": round(statistics.median(j["worker_attempt_s"] for j in jobs), 2),
        "training_median_s": round(statistics.median(j["training_s"] for j in jobs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="plain-then-TLS rounds")
    parser.add_argument("--trains", type=int, default=3, help="timed seed's jobs per round")
    parser.add_argument("--submissions", type=int, default=100, help="API submissions per mode")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    if min(args.rounds, args.trains, args.submissions) < 1:
        parser.error("--rounds, --trains and --submissions must be at least 1")
    with (
        tempfile.TemporaryDirectory() as directory,
        bench_cluster(Path(directory), "trainqtlsbench") as cluster,
    ):
        measured: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for use_tls in (False, True):
                measured[use_tls].append(
                    measure(cluster, tls=use_tls, trains=args.trains, submissions=args.submissions)
                )
    plain = summarize(measured[False], args.submissions)
    tls = summarize(measured[True], args.submissions)
    ratios: dict[str, Any] = {
        "submit": round(tls["submit_median_s"] / plain["submit_median_s"], 2),
        "seed_job_wall": round(tls["seed_job_wall_median_s"] / plain["seed_job_wall_median_s"], 2),
        "worker_attempt": round(
            tls["worker_attempt_median_s"] / plain["worker_attempt_median_s"], 2
        ),
    }
    # Each round's plain and TLS stretches are next to each other in time: their ratio is the
    # one least moved by the machine's other work.
    ratios["submit_per_round"] = [
        round(t["submit_s"] / p["submit_s"], 2)
        for p, t in zip(measured[False], measured[True], strict=True)
    ]
    ratios["seed_job_wall_per_round"] = [
        round(
            statistics.median(j["wall_s"] for j in t["jobs"])
            / statistics.median(j["wall_s"] for j in p["jobs"]),
            2,
        )
        for p, t in zip(measured[False], measured[True], strict=True)
    ]
    result: dict[str, dict[str, Any]] = {"plain": plain, "tls": tls, "tls_over_plain": ratios}
    if args.json:
        print(json.dumps(result))
        return
    for mode in ("plain", "tls"):
        figures = result[mode]
        print(
            f"{mode:>5}: {figures['submissions']} API submissions {figures['submit_median_s']} s "
            f"(median of {figures['submit_s']}; {figures['submit_ms_each']} ms each); "
            "seed's job through the queue "
            f"{figures['seed_job_wall_median_s']} s wall (median of {figures['seed_job_wall_s']}), "
            f"worker attempt {figures['worker_attempt_median_s']} s, "
            f"training {figures['training_median_s']} s"
        )
    print(
        f"TLS / plain text: submissions {ratios['submit']}x, seed's job wall "
        f"{ratios['seed_job_wall']}x, worker attempt {ratios['worker_attempt']}x; "
        f"per round: submissions {ratios['submit_per_round']}, "
        f"seed's job wall {ratios['seed_job_wall_per_round']}"
    )


if __name__ == "__main__":
    main()
