"""Real parts for integration tests: a throwaway PostgreSQL database, an isolated Redis database,
and `trainq worker` processes started from the very command the compose file names."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from storage import Database, Repository, Settings
from storage.records import RunRecord
from tests.services import create_postgres_database, drop_postgres_database, postgres_url

REDIS_HOST_URL = "redis://127.0.0.1:6379"
#: Redis database reserved for these tests (FLUSHDB is only ever sent to it). Test sessions that
#: run side by side on one machine each set their own with TRAINQ_TEST_REDIS_DB.
REDIS_TEST_DB = int(os.environ.get("TRAINQ_TEST_REDIS_DB", "11"))
#: A job process's claim in a worker log: "run 3: claimed as attempt 1 by host:PID:task".
_CLAIMED_BY = re.compile(r"claimed as attempt \d+ by [^:\s]+:(\d+):")


@dataclass
class Cluster:
    """The environment of one test's cluster: URLs, settings, and the workers it started."""

    database_url: str
    broker_url: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Environment for a `trainq` process in this cluster."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINQ_")}
        env.update(
            TRAINQ_BROKER_URL=self.broker_url,
            TRAINQ_DATABASE_URL=self.database_url,
            TRAINQ_HOME=str(self.log_dir / "home"),
            # Short lease and reconcile periods so that lost workers are noticed within seconds.
            TRAINQ_LEASE_TTL_S="4",
            TRAINQ_RECONCILE_EVERY_S="1",
            TRAINQ_REDISPATCH_AFTER_S="3",
            PYTHONUNBUFFERED="1",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        env.update(self.extra_env)
        return env

    def settings(self) -> Settings:
        """Settings equal to those the workers see."""
        return Settings.from_env(self.env())

    def repository(self) -> Repository:
        """A repository on this cluster's database."""
        return Repository(Database(self.database_url))

    def trainq(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """Run the real `trainq` command with this cluster's environment."""
        return subprocess.run(
            [sys.executable, "-m", "api_cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def start_worker(self, command: Sequence[str], name: str | None = None) -> WorkerProcess:
        """Start ``command`` (the compose worker command) locally and wait until it is ready."""
        name = name or f"w{len(self.workers) + 1}-{uuid.uuid4().hex[:6]}"
        log_path = self.log_dir / f"{name}.log"
        argv = [*command, f"--hostname={name}@%h"]
        if argv[0] == "trainq":
            argv = [sys.executable, "-m", "api_cli", *argv[1:]]
        # Killed with the test process, however it dies: a worker outliving an interrupted session
        # would keep consuming the shared test Redis database and steal the next session's jobs.
        argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
        with log_path.open("w") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                argv,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(name, process, log_path)
        self.workers.append(worker)
        worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        """Stop every worker this cluster started (SIGTERM, then SIGKILL)."""
        for worker in self.workers:
            worker.terminate()


@dataclass
class WorkerProcess:
    """A `trainq worker` process (its own session, so its children can be killed with it)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the worker printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Block until Celery reports the worker ready."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()}")
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} not ready after {timeout_s} s:\n{self.log()}")

    def wait_warm(self, timeout_s: float = 180) -> None:
        """Block until the worker's job process logged its warm-up (``worker.cluster.warm_up``):
        until then the worker takes no job, and one published meanwhile goes to another worker."""
        deadline = time.monotonic() + timeout_s
        while " warm in " not in self.log():
            assert time.monotonic() < deadline, f"{self.name} not warm:\n{self.log()}"
            assert self.alive(), f"worker {self.name} exited:\n{self.log()}"
            time.sleep(0.1)

    def alive(self) -> bool:
        """True while the main process runs."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker's main process and its job process at once (a machine dying)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def signal_main(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the main process only, as ``docker stop`` through tini and
        ``kill PID`` do."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signum)

    def press_ctrl_c(self) -> None:
        """SIGINT to the worker's whole process group, as a terminal sends it for Ctrl-C."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)

    def job_pids(self) -> list[int]:
        """Process ids of the worker's job (pool) processes: the main process's children."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [int(child) for child in children]

    def busy_job_pid(self) -> int | None:
        """The job process that claimed this worker's newest job, if it is still alive (a worker
        also has idle standby processes, ``worker.cluster.standby``)."""
        claims = _CLAIMED_BY.findall(self.log())
        alive = self.job_pids()
        return next((int(pid) for pid in reversed(claims) if int(pid) in alive), None)

    def kill_job_process(self) -> int:
        """SIGKILL the job process running this worker's job (as the kernel's OOM killer would);
        returns its pid."""
        pid = self.busy_job_pid()
        assert pid is not None, f"worker {self.name} has no busy job process:\n{self.log()}"
        os.kill(pid, signal.SIGKILL)
        return pid

    def terminate(self) -> None:
        """Warm shutdown, then SIGKILL if it does not stop in time."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def flush_test_redis() -> None:
    """Empty the Redis database reserved for these tests."""
    client = redis.Redis.from_url(f"{REDIS_HOST_URL}/{REDIS_TEST_DB}")
    client.flushdb()
    client.close()


def wait_for(run_id: int, repository: Repository, *, timeout_s: float) -> RunRecord:
    """Poll run ``run_id`` until it is terminal."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = repository.get_run(run_id)
        if run.status.terminal or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


@contextlib.contextmanager
def cluster_environment(tmp_path: Path, database_name: str) -> Iterator[Cluster]:
    """A fresh PostgreSQL database (migrated), the test Redis database flushed, workers reaped."""
    create_postgres_database(database_name)
    url = postgres_url(database_name)
    Database(url).upgrade()
    flush_test_redis()
    cluster = Cluster(
        database_url=url, broker_url=f"{REDIS_HOST_URL}/{REDIS_TEST_DB}", log_dir=tmp_path
    )
    try:
        yield cluster
    finally:
        cluster.stop_all()
        flush_test_redis()
        drop_postgres_database(database_name)
