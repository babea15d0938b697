"""The dashboard under load: the real `trainq dashboard` on PostgreSQL with the real Redis as
broker, hit by bursts of concurrent requests. Every request is answered (200, or 503 with
Retry-After when it sheds load), the server keeps serving afterwards, its Redis and PostgreSQL
connections stay bounded, and SIGTERM stops it within seconds. Numbers it cannot hold are a 400.

These count what happened; the timings are in ``bench/dashboard_bench.py``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from api_cli.commands.dashboard import GRACEFUL_STOP_S
from api_cli.dashboard.read_gate import READ_THREADS
from storage import Database
from tests.cli.conftest import embedded_env
from tests.dashboard.conftest import _wait_until_serving, free_port
from tests.integration.harness import REDIS_HOST_URL, REDIS_TEST_DB
from tests.services import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
    require_redis,
)

#: Concurrent requests in a burst: more than the dashboard's read threads and the 40 that
#: wedged the queue view for good.
BURST = 60
#: How long a client waits for an answer: far longer than a census, far shorter than "never".
CLIENT_TIMEOUT_S = 30.0
#: SIGTERM to exit, at most: uvicorn's grace for requests in flight, and room for a busy machine.
STOP_WITHIN_S = GRACEFUL_STOP_S + 7
#: Redis connections the dashboard may hold after a burst: its publisher's pool and one census.
MAX_REDIS_CONNECTIONS = 12
#: A number no id or page can be (31 digits), and 2^63 (one past PostgreSQL's BIGINT).
HUGE = "1" * 31
TWO_TO_63 = str(2**63)


@dataclass
class Served:
    """A running `trainq dashboard` process and where it answers."""

    process: subprocess.Popen[str]
    url: str
    database: str | None = None  # the PostgreSQL database it reads, if any


@contextlib.contextmanager
def dashboard(env: dict[str, str]) -> Iterator[Served]:
    """`trainq dashboard` with ``env``, stopped (SIGTERM, then SIGKILL) when done."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        _wait_until_serving(served.url, process)
        yield served
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@contextlib.contextmanager
def cluster_dashboard(tmp_path: Path) -> Iterator[Served]:
    """The dashboard of a cluster: a fresh PostgreSQL database and the test Redis as broker."""
    require_postgres()
    require_redis()
    name = f"trainq_test_dash_{uuid.uuid4().hex[:8]}"
    create_postgres_database(name)
    database = Database(postgres_url(name))
    database.ensure_schema(auto_upgrade=True)
    database.dispose(close=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINQ_")}
    env.update(
        TRAINQ_DATABASE_URL=postgres_url(name),
        TRAINQ_BROKER_URL=f"{REDIS_HOST_URL}/{REDIS_TEST_DB}",
        TRAINQ_HOME=str(tmp_path / "home"),
    )
    try:
        with dashboard(env) as served:
            served.database = name
            yield served
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with cluster_dashboard(tmp_path_factory.mktemp("cluster-dashboard")) as served:
        yield served


def get(url: str, timeout_s: float = CLIENT_TIMEOUT_S) -> tuple[int | str, str | None]:
    """(status, Retry-After) of GET ``url``; an exception's name when no answer came."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
            return response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, error.headers.get("Retry-After")
    except OSError as error:
        return type(error).__name__, None


def burst(urls: list[str]) -> list[tuple[int | str, str | None]]:
    """GET every URL at once (one thread each)."""
    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(get, urls))


def answered(results: list[tuple[int | str, str | None]]) -> Counter[int | str]:
    """Statuses counted; a 503 without Retry-After counts as its own kind."""
    return Counter(
        "503 without Retry-After" if status == 503 and not retry_after else status
        for status, retry_after in results
    )


def redis_connections_of(pid: int) -> int:
    """The broker's CLIENT LIST entries that are this process's sockets."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    client = redis.Redis.from_url(REDIS_HOST_URL)
    try:
        return sum(int(entry["addr"].rsplit(":", 1)[1]) in ports for entry in client.client_list())
    finally:
        client.close()


def postgres_connections_to(database: str) -> int:
    with psycopg.connect(postgres_url("postgres").replace("+psycopg", ""), autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_burst_on_the_queue_view_is_answered_in_full_and_the_server_keeps_serving(
    cluster: Served,
) -> None:
    results = burst([cluster.url + "/api/queue"] * BURST)
    assert set(answered(results)) <= {200, 503}, answered(results)
    assert answered(results)[200] >= 1
    assert get(cluster.url + "/api/queue")[0] == 200
    assert get(cluster.url + "/queue")[0] == 200
    assert get(cluster.url + "/")[0] == 200


def test_a_burst_of_mixed_pages_holds_a_bounded_number_of_connections(cluster: Served) -> None:
    pages = ["/api/queue", "/queue", "/", "/api/runs", "/?status=running", "/runs/1"]
    results = burst([cluster.url + pages[i % len(pages)] for i in range(2 * BURST)])
    # /runs/1 does not exist in the empty database: a 404 is its answer.
    assert set(answered(results)) <= {200, 404, 503}, answered(results)
    assert redis_connections_of(cluster.process.pid) <= MAX_REDIS_CONNECTIONS
    assert cluster.database is not None
    # One connection per read thread, and the one the start-up's schema check keeps.
    assert postgres_connections_to(cluster.database) <= READ_THREADS + 1


def test_sigterm_during_a_burst_stops_the_server_within_seconds(tmp_path: Path) -> None:
    with cluster_dashboard(tmp_path) as served:
        with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
            urls = [served.url + ("/api/queue" if i % 2 else "/") for i in range(BURST)]
            pending = [pool.submit(get, url) for url in urls]
            served.process.send_signal(signal.SIGTERM)
            try:
                served.process.wait(timeout=STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the dashboard still ran {STOP_WITHIN_S} s after SIGTERM")
            concurrent.futures.wait(pending)
        # uvicorn re-raises the SIGTERM it handled once it has stopped: "killed by SIGTERM".
        assert served.process.returncode in (0, -signal.SIGTERM)
        assert served.process.stderr is not None
        assert "Traceback" not in served.process.stderr.read()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The dashboard over an empty database of each kind (no broker)."""
    tmp_path = tmp_path_factory.mktemp(f"dashboard-{request.param}")
    if request.param == "sqlite":
        with dashboard(embedded_env(tmp_path / "home")) as served:
            yield served
        return
    require_postgres()
    name = f"trainq_test_dash_{uuid.uuid4().hex[:8]}"
    create_postgres_database(name)
    database = Database(postgres_url(name))
    database.ensure_schema(auto_upgrade=True)
    database.dispose(close=True)
    env = embedded_env(tmp_path / "home") | {"TRAINQ_DATABASE_URL": postgres_url(name)}
    try:
        with dashboard(env) as served:
            yield served
    finally:
        drop_postgres_database(name)


@pytest.mark.parametrize(
    "path",
    [
        f"/?page={HUGE}",
        f"/api/runs?page={HUGE}",
        f"/?per_page={HUGE}",
        f"/?sweep={TWO_TO_63}",
        f"/api/runs?sweep={HUGE}",
        f"/runs/{TWO_TO_63}",
        f"/api/runs/{TWO_TO_63}/metrics",
        f"/api/runs/1/metrics?max_points={HUGE}",
        f"/sweeps/{TWO_TO_63}",
        f"/api/sweeps/{TWO_TO_63}/curves",
        f"/compare?runs=1,{TWO_TO_63}",
        "/?page=" + "9" * 5_000,  # more digits than Python's int() takes
    ],
)
def test_a_number_no_database_can_hold_is_a_400_naming_it(any_database: Served, path: str) -> None:
    status, _ = get(any_database.url + path)
    assert status == 400, (path[:80], status)
    assert get(any_database.url + "/")[0] == 200
