"""A compose project for the cluster benchmarks (bench/tls_bench.py, bench/cluster_scale_bench.py).

docker-compose.yml with the compose tests' secrets and deploy/offline-images.sh's images (see
``tests.cluster.live.live``), reached from this machine through loopback ports: in plain text
through deploy/compose.host.yml, or with TLS through docker-compose.tls.yml in its place (the same
project and volumes; every client verifies against the CA that ``tls-certs`` made). Production
settings: the test override (6 s leases) is not used. Always taken down with its volumes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from storage import Database, Repository
from storage.errors import StorageError
from storage.records import RunRecord
from storage.settings import Settings
from tests.cluster.compose import COMPOSE_FILE, HOST_OVERRIDE_FILE, REPO_ROOT, TEST_SECRETS
from tests.cluster.live.live import (
    LiveCluster,
    engine_problem,
    free_port,
    image_settings,
    poll,
    run,
)

TLS_FILE = REPO_ROOT / "docker-compose.tls.yml"


@dataclass
class BenchCluster:
    """One compose project; ``use`` switches it between plain text and TLS."""

    cluster: LiveCluster
    tls: bool = False

    @property
    def variables(self) -> dict[str, str]:
        return self.cluster.variables

    def use(self, *, tls: bool, workers: int) -> None:
        """``up -d`` the worker service (and what it depends on) with ``workers`` containers, in
        plain text or TLS; return once the broker and the database answer from this machine and
        every worker is ready."""
        self.tls = tls
        self.cluster.files = [COMPOSE_FILE, TLS_FILE if tls else HOST_OVERRIDE_FILE]
        self.cluster.compose("up", "-d", "--scale", f"worker={workers}", "worker", timeout_s=600)
        poll(self.reachable, timeout_s=180, what="broker and database answer", every_s=0.5)
        if workers:
            self.cluster.wait_workers_ready(workers)

    def env(self) -> dict[str, str]:
        """`trainq` on this machine against the cluster, in the current mode."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
        redis_password = self.variables["REDIS_PASSWORD"]
        app_password = self.variables["POSTGRES_APP_PASSWORD"]
        if self.tls:
            broker = f"rediss://trainq:{redis_password}@127.0.0.1:{self.variables['TRAINQ_TLS_REDIS_PORT']}/0"
            postgres_port = self.variables["TRAINQ_TLS_POSTGRES_PORT"]
            env["TRAINQ_CA_FILE"] = str(Path(self.variables["TRAINQ_TLS_DIR"]) / "ca.crt")
        else:
            broker = f"redis://trainq:{redis_password}@127.0.0.1:{self.variables['TRAINQ_HOST_REDIS_PORT']}/0"
            postgres_port = self.variables["TRAINQ_HOST_POSTGRES_PORT"]
        env.update(
            TRAINQ_BROKER_URL=broker,
            TRAINQ_DATABASE_URL=(
                f"postgresql+psycopg://trainq_app:{app_password}@127.0.0.1:{postgres_port}/trainq"
            ),
            TRAINQ_HOME=str(self.cluster.directory / "host-home"),
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        return env

    def settings(self) -> Settings:
        """The settings `trainq` reads from :meth:`env` (the CA written into both URLs)."""
        return Settings.from_env(self.env())

    @contextmanager
    def repository(self) -> Iterator[Repository]:
        """The cluster's records, in the current mode; its connections closed after."""
        database = Database(self.settings().database_url)
        try:
            yield Repository(database)
        finally:
            database.dispose()

    def reachable(self) -> bool:
        """Whether the broker answers PING and the database a query, from this machine."""
        settings = self.settings()
        assert settings.broker_url is not None
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=2)
        try:
            client.ping()
        except redis.RedisError:
            return False
        finally:
            client.close()
        try:
            with self.repository() as repository:
                repository.list_runs(limit=1)
        except StorageError:  # starting, or recreated for the other mode: not yet
            return False
        return True

    def trainq(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        """`trainq ARGS` on this machine, in the current mode."""
        return run([sys.executable, "-m", "api_cli", *args], env=self.env(), timeout_s=timeout_s)

    def wait_terminal(self, run_ids: Sequence[int], timeout_s: float = 1200) -> list[RunRecord]:
        """Poll until every run is terminal; their records."""
        with self.repository() as repository:
            poll(
                lambda: all(repository.get_run(i).status.terminal for i in run_ids),
                timeout_s=timeout_s,
                what=f"{len(run_ids)} runs terminal",
                every_s=0.2,
            )
            return [repository.get_run(i) for i in run_ids]


@contextmanager
def bench_cluster(directory: Path, name: str, worker_cpus: str = "2") -> Iterator[BenchCluster]:
    """A fresh project ``name<pid>`` (not started); ``down -v`` when the block ends, however."""
    problem = engine_problem()
    if problem:
        raise SystemExit(f"error: {problem}")
    tls_dir = directory / "tls"
    tls_dir.mkdir()
    variables = {
        **TEST_SECRETS,
        **image_settings(),
        "TRAINQ_WORKER_CPUS": worker_cpus,
        "TRAINQ_TLS_DIR": str(tls_dir),
        "TRAINQ_TLS_REDIS_PORT": str(free_port()),
        "TRAINQ_TLS_POSTGRES_PORT": str(free_port()),
        "TRAINQ_HOST_REDIS_PORT": str(free_port()),
        "TRAINQ_HOST_POSTGRES_PORT": str(free_port()),
        "FLOWER_HOST_PORT": str(free_port()),
        "DASHBOARD_HOST_PORT": str(free_port()),
    }
    cluster = LiveCluster.with_env(f"{name}{os.getpid()}", directory, variables)
    try:
        yield BenchCluster(cluster)
    finally:
        cluster.down(volumes=True)
