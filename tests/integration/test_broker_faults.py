"""Redis dies: the database remembers every run, and the reconciler makes the broker agree again.

These tests kill and restart a private `redis-server` on its own port, never the shared one.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from storage.records import RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster, wait_for
from tests.integration.test_cluster import assert_steps_exactly, submit

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


@dataclass
class PrivateRedis:
    """A redis-server we may kill: no persistence, like the fault plan's R2."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = PrivateRedis(port, tmp_path)
    server.start()
    yield server
    server.kill()


def test_a_redis_crash_without_persistence_loses_no_running_or_queued_run(
    cluster: Cluster, private_redis: PrivateRedis
) -> None:
    cluster.broker_url = private_redis.url
    worker = cluster.start_worker(worker_command())
    repository = cluster.repository()
    running = submit(
        cluster,
        "--steps",
        "150000",
        "--chunk-steps",
        "1000",
        "--checkpoint-every",
        "10000",
        "--seed",
        "21",
    )
    waiting = submit(cluster, "--steps", "3000", "--chunk-steps", "500", "--seed", "22")
    deadline = time.monotonic() + 120
    while repository.get_run(running).steps_done < 20_000:
        assert time.monotonic() < deadline, "the first run never reached step 20,000"
        time.sleep(0.02)
    assert repository.get_run(waiting).status is RunStatus.QUEUED

    private_redis.kill()  # every message, queued and unacknowledged, is gone
    time.sleep(1)
    private_redis.start()

    finished = [wait_for(run_id, repository, timeout_s=240) for run_id in (running, waiting)]
    assert [run.status for run in finished] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED], (
        worker.log()
    )
    # Celery terminated the running job when it lost the broker: not the run's fault.
    history = [attempt.outcome.value for attempt in repository.list_attempts(running)]
    assert (finished[0].attempt, history) == (1, ["handed back", "succeeded"]), worker.log()
    assert_steps_exactly(cluster, running, 150_000)
    assert_steps_exactly(cluster, waiting, 3000)
    assert worker.alive()
