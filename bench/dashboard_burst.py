"""The real ``trainq dashboard`` under a bounded burst while a run trains (``dashboard_bench
--burst``; see that module's docstring).

For each backend: fill a database (1,000 finished runs and one run of 200,000 steps), start a
run training, start ``trainq dashboard`` as a user does, and send 2,000 GETs, 100 at once, over
a mix of the runs list, a run page, its curve, the runs JSON and the queue page and its JSON.
Reported: how many were answered with each status, p50 and p95 latency of the answered ones,
errors (timeouts, refused connections, any status but 200 and 503), and then, with a second
burst in flight, the time from SIGTERM to the process's exit. With ``--baseline REV`` the same
burst goes to a dashboard served from git revision REV, on the same database, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.dashboard_bench import BENCH_DATABASE, write_long_run, write_many_runs
from storage import Database, Repository, RunStatus
from tests.integration.harness import REDIS_HOST_URL, Cluster
from tests.services import create_postgres_database, drop_postgres_database, postgres_url

REQUESTS = 2_000
AT_ONCE = 100
FILLED_RUNS = 1_000
LONG_RUN_STEPS = 200_000
#: A client gives up on one request after this long (the issue's lost requests waited 60 s).
CLIENT_TIMEOUT_S = 30.0
#: A burst sends no new request after this long (a wedged server would otherwise take hours).
BURST_DEADLINE_S = 240.0
#: The burst during which SIGTERM is sent, and how long after its start.
STOP_BURST_REQUESTS = 400
SIGTERM_AFTER_S = 1.0
#: After SIGTERM, how long the benchmark waits before it SIGKILLs the server.
EXIT_WAIT_S = 30.0
#: The run that trains during the bursts: long enough to outlast them.
TRAINING_STEPS = 5_000_000
#: Redis database of the benchmark's broker (the tests use 11 and up; this one is its own).
BENCH_REDIS_DB = int(os.environ.get("TRAINQ_BENCH_REDIS_DB", "14"))


@dataclass
class BurstFigures:
    """One burst against one server."""

    served_from: str
    requests: int
    statuses: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    errors: int = 0
    not_sent: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    wall_s: float = 0.0
    sigterm_to_exit_s: float | None = None  # None: still running EXIT_WAIT_S after SIGTERM


def mixed_paths(long_run: int, count: int) -> list[str]:
    """``count`` paths cycling through the pages a user and the pages' polling ask for."""
    pages = [
        "/",
        "/api/queue",
        f"/runs/{long_run}",
        "/api/runs",
        f"/api/runs/{long_run}/metrics",
        "/queue",
        "/?status=running",
        "/api/runs?page=3&per_page=100",
    ]
    return [pages[i % len(pages)] for i in range(count)]


async def burst(url: str, paths: list[str], at_once: int) -> tuple[list[Any], float]:
    """GET every path, ``at_once`` in flight; (status or error name, seconds) for each."""
    outcomes: list[Any] = []
    started = time.monotonic()
    limits = httpx.Limits(max_connections=at_once, max_keepalive_connections=at_once)
    slots = asyncio.Semaphore(at_once)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=CLIENT_TIMEOUT_S) as client:

        async def one(path: str) -> None:
            async with slots:
                if time.monotonic() - started > BURST_DEADLINE_S:
                    outcomes.append(("not sent", 0.0))
                    return
                begun = time.monotonic()
                try:
                    response = await client.get(path)
                    outcomes.append((str(response.status_code), time.monotonic() - begun))
                except httpx.HTTPError as error:
                    cause = repr(error.__cause__ or error.__context__)[:60]
                    outcomes.append((f"{type(error).__name__} ({cause})", time.monotonic() - begun))

        await asyncio.gather(*(one(path) for path in paths))
    return outcomes, time.monotonic() - started


def summarize(served_from: str, outcomes: list[Any], wall_s: float) -> BurstFigures:
    """Counts and percentiles of one burst."""
    statuses = Counter(status for status, _ in outcomes)
    answered = [s for status, s in outcomes if status.isdigit()]
    times_ms = sorted(s * 1000 for s in answered)
    quantiles = statistics.quantiles(times_ms, n=20) if len(times_ms) >= 2 else [None] * 19
    return BurstFigures(
        served_from=served_from,
        requests=len(outcomes),
        statuses=dict(statuses),
        answered=len(answered),
        errors=sum(n for status, n in statuses.items() if status not in ("200", "503", "not sent")),
        not_sent=statuses.get("not sent", 0),
        p50_ms=round(statistics.median(times_ms), 1) if times_ms else None,
        p95_ms=round(quantiles[18], 1) if quantiles[18] is not None else None,
        wall_s=round(wall_s, 1),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_dashboard(env: dict[str, str], tree: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`trainq dashboard` from the code in ``tree``; returns once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "dashboard", "--port", str(port)],
        env=env | {"PYTHONPATH": str(tree)},
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trainq dashboard from {tree} exited {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/api/runs?per_page=1", timeout=10):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"trainq dashboard from {tree} did not answer")


async def measure(env: dict[str, str], tree: Path, label: str, long_run: int) -> BurstFigures:
    """The burst, then SIGTERM during a second burst, against one dashboard."""
    process, url = start_dashboard(env, tree)
    try:
        outcomes, wall_s = await burst(url, mixed_paths(long_run, REQUESTS), AT_ONCE)
        figures = summarize(label, outcomes, wall_s)
        stopping = asyncio.ensure_future(
            burst(url, mixed_paths(long_run, STOP_BURST_REQUESTS), AT_ONCE)
        )
        await asyncio.sleep(SIGTERM_AFTER_S)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, EXIT_WAIT_S)
            figures.sigterm_to_exit_s = round(time.monotonic() - signalled, 2)
        except subprocess.TimeoutExpired:
            figures.sigterm_to_exit_s = None
        stopping.cancel()
        return figures
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until_training(repository: Repository, trainer: subprocess.Popen[Any]) -> int:
    """The id of the run that trains, once it is RUNNING with metrics."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert trainer.poll() is None, "the training process exited"
        running = repository.page_training_runs(statuses=[RunStatus.RUNNING], limit=1).runs
        if running and running[0].steps_done > 0:
            return running[0].id
        time.sleep(0.5)
    raise RuntimeError("no run started training within 300 s")


def fill(url: str) -> int:
    """The database's runs; returns the long run's id."""
    database = Database(url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    long_run = write_long_run(repository, LONG_RUN_STEPS)
    write_many_runs(repository, database, FILLED_RUNS)
    return long_run


def served_trees(baseline: str | None, scratch: Path) -> list[tuple[str, Path]]:
    """(label, source tree) to serve from: this checkout, and the baseline if asked (a git
    revision, whose files are taken with ``git archive``, or a directory holding a tree)."""
    here = Path(__file__).resolve().parent.parent
    trees = [("this checkout", here)]
    if baseline and Path(baseline).is_dir():
        trees.insert(0, (f"baseline {baseline}", Path(baseline)))
    elif baseline:
        tree = scratch / "baseline"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "archive", baseline], cwd=here, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        trees.insert(0, (f"baseline {baseline}", tree))
    return trees


def bench_backend(backend: str, baseline: str | None) -> dict[str, Any]:
    """Both measurements on one backend; the training run goes on through all of them."""
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINQ_")}
        env.update(TRAINQ_HOME=str(scratch / "home"), TF_CPP_MIN_LOG_LEVEL="2")
        cluster: Cluster | None = None
        if backend == "sqlite":
            url = f"sqlite:///{scratch / 'home' / 'trainq.db'}"
            (scratch / "home").mkdir()
            long_run = fill(url)
            trainer = subprocess.Popen(
                [sys.executable, "-m", "api_cli", "train", "--steps", str(TRAINING_STEPS)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            create_postgres_database(BENCH_DATABASE)
            url = postgres_url(BENCH_DATABASE)
            long_run = fill(url)
            cluster = Cluster(url, f"{REDIS_HOST_URL}/{BENCH_REDIS_DB}", scratch)
            cluster.start_worker(["trainq", "worker", "--queues", "train,eval"])
            env = cluster.env()
            trainer = subprocess.Popen(
                [sys.executable, "-m", "api_cli", "train", "--steps", str(TRAINING_STEPS)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            training = wait_until_training(Repository(Database(url)), trainer)
            results = [
                asdict(asyncio.run(measure(env, tree, label, long_run)))
                for label, tree in served_trees(baseline, scratch)
            ]
            return {"backend": backend, "training_run": training, "bursts": results}
        finally:
            trainer.kill()
            trainer.wait()
            if cluster is not None:
                cluster.stop_all()
                drop_postgres_database(BENCH_DATABASE)


def main(backend: str, baseline: str | None, *, as_json: bool) -> None:
    """Run the burst on the chosen backends and print the figures."""
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    results = [bench_backend(name, baseline) for name in backends]
    load = os.getloadavg()
    if as_json:
        print(json.dumps({"load_average": load, "results": results}, indent=2))
        return
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {REQUESTS} requests, "
        f"{AT_ONCE} at once, a run training"
    )
    for result in results:
        for b in result["bursts"]:
            stop = b["sigterm_to_exit_s"]
            print(
                f"{result['backend']:>8} {b['served_from']}: answered {b['answered']}/"
                f"{b['requests']} {b['statuses']}, p50 {b['p50_ms']} ms, p95 {b['p95_ms']} ms, "
                f"errors {b['errors']}, {b['wall_s']} s; SIGTERM to exit "
                + (f"{stop} s" if stop is not None else f"> {EXIT_WAIT_S:g} s (killed)")
            )
