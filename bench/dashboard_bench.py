"""Dashboard benchmark (not a test): how long the two heaviest pages take to produce their data,
and how the real server holds a burst.

    python -m bench.dashboard_bench [--backend sqlite|postgres|both] [--json]
    python -m bench.dashboard_bench --burst [--baseline REV] [--backend ...] [--json]

1. The run page's data for a run of 1,000,000 steps: ``GET /api/runs/ID/metrics`` (the curve the
   page draws and polls, downsampled to 1,000 points with NumPy over the chunk blobs) and the
   page itself (``GET /runs/ID``). The run is written the way a worker writes it: 2,000 chunks of
   500 steps (the default chunk size) through ``record_chunk``. Target: at most 200 ms.
2. The runs page with 10,000 training runs: ``GET /`` (its first 50 runs with their newest
   loss and accuracy, validation and test accuracy, and the total). The runs are created through
   ``create_run``; their statuses, summaries and one metric chunk each are then filled in with
   bulk SQL, which is only how the benchmark gets there fast. Target: at most 300 ms.

Requests go through the real ASGI app (Starlette's test client, in process) on a repository
opened read-only, as ``trainq dashboard`` opens it. Each figure is the median of 15 requests
after 2 warm-up ones. PostgreSQL: a throwaway database ``trainq_bench_dashboard`` on
127.0.0.1:5432; SQLite: a file in a temporary directory.

3. ``--burst`` (``bench.dashboard_burst``): the real ``trainq dashboard`` process under 2,000
   requests, 100 at once, mixed pages and the queue view, while a run trains (SQLite: embedded,
   in a ``trainq train`` process; PostgreSQL: a ``trainq worker`` with the Redis broker). Then a
   second burst, SIGTERM in its middle, and the time until the process is gone. ``--baseline
   REV`` serves the same burst from the code of git revision REV too, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from api_cli.dashboard.app import create_app
from storage import Database, JobKind, MetricChunk, Repository, Settings
from tests.services import create_postgres_database, drop_postgres_database, postgres_url

if TYPE_CHECKING:
    from starlette.testclient import TestClient

BENCH_DATABASE = "trainq_bench_dashboard"
LONG_RUN_STEPS = 1_000_000
CHUNK_STEPS = 500
MANY_RUNS = 10_000
REPEATS = 15
LEASE_TTL_S = 600.0


def write_long_run(repo: Repository, steps: int = LONG_RUN_STEPS) -> int:
    """A run of ``steps`` written chunk by chunk, with a validation point every 10,000 steps."""
    run = repo.create_run(
        kind=JobKind.TRAIN,
        config={"steps": steps, "learning_rate": 0.01},
        seed=0,
        queue="bench",
        max_attempts=1,
        name="long",
    )
    claimed = repo.claim_run(run.id, owner="bench", worker_host="bench", lease_ttl_s=LEASE_TTL_S)
    assert claimed is not None
    rng = np.random.default_rng(0)
    for first in range(1, steps + 1, CHUNK_STEPS):
        chunk = MetricChunk(
            first_step=first,
            loss=rng.random(CHUNK_STEPS, dtype=np.float32),
            accuracy=rng.random(CHUNK_STEPS, dtype=np.float32),
        )
        repo.record_chunk(run.id, claimed.attempt, chunk, lease_ttl_s=LEASE_TTL_S)
        if (first + CHUNK_STEPS - 1) % 10_000 == 0:
            repo.record_validation(run.id, first + CHUNK_STEPS - 1, 0.5, 0.8)
    return run.id


def write_many_runs(repo: Repository, db: Database, count: int = MANY_RUNS) -> None:
    """``count`` finished training runs, each with one metric chunk and a summary."""
    ids = [
        repo.create_run(
            kind=JobKind.TRAIN,
            config={"steps": CHUNK_STEPS, "learning_rate": 0.01},
            seed=i,
            queue="bench",
            max_attempts=1,
            name=f"run-{i}",
            tags={"team": "a" if i % 2 else "b"},
        ).id
        for i in range(count)
    ]
    summary = json.dumps(
        {"steps_done": CHUNK_STEPS, "final_loss": 0.5, "final_accuracy": 0.8, "device": "CPU:0"}
    )
    blob = np.full(CHUNK_STEPS, 0.5, dtype="<f4").tobytes()
    placeholder = "%s" if db.dialect_name == "postgresql" else "?"
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.executemany(
            f"UPDATE runs SET status = 'succeeded', steps_done = {CHUNK_STEPS}, "
            f"device = 'CPU:0', summary = {placeholder} WHERE id = {placeholder}",
            [(summary, run_id) for run_id in ids],
        )
        cursor.executemany(
            "INSERT INTO metric_chunks (run_id, first_step, n_steps, loss, accuracy) "
            f"VALUES ({', '.join([placeholder] * 5)})",
            [(run_id, 1, CHUNK_STEPS, blob, blob) for run_id in ids],
        )
        connection.commit()
    finally:
        connection.close()


def median_ms(client: TestClient, path: str) -> dict[str, float]:
    """Median and slowest of ``REPEATS`` GETs of ``path`` (after two warm-ups), in ms."""
    for _ in range(2):
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def bench(url: str, backend: str) -> dict[str, Any]:
    """Fill the database at ``url`` and time the pages over it."""
    db = Database(url)
    db.ensure_schema(auto_upgrade=True)
    writer = Repository(db)
    started = time.perf_counter()
    long_run = write_long_run(writer)
    write_many_runs(writer, db)
    fill_s = time.perf_counter() - started
    with warnings.catch_warnings():
        # Starlette asks for httpx2 over httpx; its test client works with either.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    reader = Repository(Database(url, read_only=True))
    app = create_app(reader, Settings.from_env())
    with TestClient(app) as client:
        points = len(client.get(f"/api/runs/{long_run}/metrics").json()["steps"])
        figures = {
            "backend": backend,
            "fill_s": round(fill_s, 1),
            "curve_points": points,
            "run_metrics_json": median_ms(client, f"/api/runs/{long_run}/metrics"),
            "run_page_html": median_ms(client, f"/runs/{long_run}"),
            "runs_page_html": median_ms(client, "/"),
            "runs_page_json": median_ms(client, "/api/runs"),
        }
    db.dispose(close=True)
    return figures


def main() -> None:
    """Run the benchmark on the chosen backends and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--burst", action="store_true", help="the server under a burst (3.)")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="with --burst: also serve from git revision REV (or a dir)",
    )
    args = parser.parse_args()
    if args.burst:
        from bench.dashboard_burst import main as burst_main

        burst_main(args.backend, args.baseline, as_json=args.json)
        return
    results = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            results.append(bench(f"sqlite:///{Path(directory) / 'bench.db'}", "sqlite"))
    if args.backend in ("postgres", "both"):
        create_postgres_database(BENCH_DATABASE)
        try:
            results.append(bench(postgres_url(BENCH_DATABASE), "postgresql"))
        finally:
            drop_postgres_database(BENCH_DATABASE)
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"load_average": load, "results": results}, indent=2))
        return
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for r in results:
        print(
            f"{r['backend']}: 1,000,000-step run: metrics JSON "
            f"{r['run_metrics_json']['median_ms']} ms"
            f" (max {r['run_metrics_json']['max_ms']}; {r['curve_points']} points), run page "
            f"{r['run_page_html']['median_ms']} ms; 10,000 runs: runs page "
            f"{r['runs_page_html']['median_ms']} ms (max {r['runs_page_html']['max_ms']}), "
            f"JSON {r['runs_page_json']['median_ms']} ms; filled in {r['fill_s']} s"
        )


if __name__ == "__main__":
    main()
