"""A killed embedded run is taken over by `trainq resume` at once, losing nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Database, Repository
from storage.records import JobKind, RunStatus
from tests.cli.conftest import embedded_env, trainq_in, wait_for_run_1

pytestmark = pytest.mark.slow

STEPS = 150_000


def wait_until_step(repository: Repository, process: subprocess.Popen[bytes], step: int) -> None:
    """Poll run 1 until it passed ``step`` (the CLI creates the database and schema first)."""
    wait_for_run_1(
        repository,
        process,
        lambda r: r.get_run(1).steps_done >= step,
        f"reached step {step}",
        timeout_s=120,
    )


def test_a_killed_embedded_run_is_taken_over_at_once_and_resumes_from_its_newest_checkpoint(
    tmp_path: Path,
) -> None:
    # The default 30 s lease: resume must not wait for it when the owner process is gone.
    env = embedded_env(tmp_path)
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
    newest = repository.list_checkpoints(1)[-1].step

    resumed = trainq_in(tmp_path, "resume", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert f"its process {process.pid} is gone; taking the run over" in resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["status"] == "succeeded"
    assert report["attempts"] == 2
    assert report["steps_done"] == STEPS
    steps = [row.step for row in repository.read_metrics(1)]
    assert steps == list(range(1, STEPS + 1))
    assert newest >= 40_000

    finished = trainq_in(tmp_path, "resume", "1")
    assert finished.returncode == 3
    assert "already finished" in finished.stderr


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param(f"{socket.gethostname()}:{os.getpid()}:test", id="a-live-process-here"),
        pytest.param("another-host:1234:embedded", id="a-process-on-another-host"),
    ],
)
def test_resume_waits_for_the_lease_of_an_owner_that_may_be_alive(
    tmp_path: Path, owner: str
) -> None:
    assert trainq_in(tmp_path, "runs", "list").returncode == 0  # creates the database
    repository = Repository(Database(f"sqlite:///{tmp_path / 'trainq.db'}"))
    run = repository.create_run(
        kind=JobKind.TRAIN, config={"steps": 100}, seed=1, queue="train", max_attempts=3
    )
    repository.claim_run(run.id, owner=owner, worker_host="h", lease_ttl_s=600)

    result = trainq_in(tmp_path, "resume", str(run.id))

    assert result.returncode == 3
    assert "try again once the lease has expired" in result.stderr
    assert repository.get_run(run.id).lease_owner == owner
