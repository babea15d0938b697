"""An embedded run whose process was killed is resumed by `trainq resume`, losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Database, Repository, StorageError
from storage.records import RunStatus
from tests.cli.conftest import embedded_env

pytestmark = pytest.mark.slow

STEPS = 150_000


def trainq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "api_cli", *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def wait_until_step(repository: Repository, process: subprocess.Popen[bytes], step: int) -> None:
    """Poll run 1 until it passed ``step`` (the CLI creates the database and schema first)."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"the run never reached step {step}"
        assert process.poll() is None, "the run ended before it could be killed"
        try:
            if repository.list_runs() and repository.get_run(1).steps_done >= step:
                return
        except StorageError:  # the file or its schema does not exist yet
            pass
        time.sleep(0.05)


def test_a_killed_embedded_run_resumes_from_its_newest_checkpoint(tmp_path: Path) -> None:
    env = embedded_env(tmp_path) | {"TRAINQ_LEASE_TTL_S": "2"}
    options = ["--steps", str(STEPS), "--chunk-steps", "1000", "--checkpoint-every", "20000"]
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "train", *options, "--seed", "5", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    repository = Repository(Database(f"sqlite:///{tmp_path / 'trainq.db'}"))
    try:
        wait_until_step(repository, process, 45_000)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    interrupted = repository.get_run(1)
    assert interrupted.status is RunStatus.RUNNING
    assert interrupted.steps_done < STEPS

    too_soon = trainq(env, "resume", "1")
    assert too_soon.returncode == 3
    assert "lease" in too_soon.stderr

    time.sleep(2.5)  # the dead process's lease expires
    resumed = trainq(env, "resume", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["status"] == "succeeded"
    assert report["attempts"] == 2
    assert report["steps_done"] == STEPS
    steps = [row.step for row in repository.read_metrics(1)]
    assert steps == list(range(1, STEPS + 1))

    finished = trainq(env, "resume", "1")
    assert finished.returncode == 3
    assert "already finished" in finished.stderr
