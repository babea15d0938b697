"""A worker never logs its broker password: not in Celery's banner, its connection errors, or ours.

A password in the broker URL's query (``redis://host:6379/0?password=PW``, which redis-py accepts)
used to stop the worker at start with an internal error, since kombu reads credentials only from
the userinfo; now it is handed to kombu there, where kombu's banner and logs mask it, and every
log line passes through ``storage.redaction`` as well.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PW = "Hunter2Secret"


def test_a_worker_with_a_query_string_password_starts_serves_and_never_logs_it(
    cluster: Cluster,
) -> None:
    cluster.broker_url += f"?password={PW}"
    worker = cluster.start_worker(worker_command())
    status = cluster.trainq("status")
    worker.terminate()
    assert status.returncode == 0, status.stdout + status.stderr
    assert "workers online: 1" in status.stdout
    log = worker.log()
    assert "transport:" in log and " ready." in log
    assert PW not in log + status.stdout + status.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"redis://127.0.0.1:1/0?password={PW}",
        f"redis://trainq:{PW}@127.0.0.1:1/0",
        f"redis://:{PW}@127.0.0.1:1/0?password={PW}",
    ],
)
def test_a_worker_that_cannot_reach_its_broker_logs_the_failure_without_the_password(
    cluster: Cluster, url: str
) -> None:
    cluster.broker_url = url
    log_path = cluster.log_dir / "unreachable.log"
    argv = [sys.executable, "-m", "api_cli", *worker_command()[1:], "--hostname=unreachable@%h"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "--", *argv],
            env=cluster.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "Cannot connect to" not in log_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    text = log_path.read_text()
    assert "Cannot connect to" in text
    assert PW not in text
