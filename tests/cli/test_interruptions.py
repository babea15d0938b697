"""Ctrl-C during an embedded run keeps the work: a checkpoint, a resumable run, exit 130."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from storage import Database, Repository
from storage.records import RunStatus
from tests.cli.conftest import embedded_env, trainq_in, wait_for_run_1

pytestmark = pytest.mark.slow

INTERRUPTED = 130


def start_training(env: dict[str, str], *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "api_cli", "train", *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_step(repository: Repository, process: subprocess.Popen[str], step: int) -> None:
    wait_for_run_1(
        repository, process, lambda r: r.get_run(1).steps_done >= step, f"reached step {step}"
    )


def corrupt_checkpoint(path: Path, step: int) -> None:
    with sqlite3.connect(path) as connection:
        (blob,) = connection.execute(
            "SELECT weights FROM checkpoints WHERE step = ?", (step,)
        ).fetchone()
        damaged = bytearray(blob)
        damaged[len(damaged) // 2] ^= 0xFF
        connection.execute(
            "UPDATE checkpoints SET weights = ? WHERE step = ?", (bytes(damaged), step)
        )
    connection.close()


def test_ctrl_c_checkpoints_the_run_where_it_stopped_and_resume_finishes_it_exactly(
    tmp_path: Path,
) -> None:
    steps = 60_000
    options = ["--steps", str(steps), "--chunk-steps", "1000", "--checkpoint-every", "20000"]
    env = embedded_env(tmp_path / "interrupted")
    repository = Repository(Database(f"sqlite:///{tmp_path / 'interrupted' / 'trainq.db'}"))
    process = start_training(env, *options, "--seed", "5")
    try:
        wait_until_step(repository, process, 25_000)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()

    assert process.returncode == INTERRUPTED, stderr
    run = repository.get_run(1)
    assert run.status is RunStatus.QUEUED
    assert run.lease_owner is None and run.lease_expires_at is None
    assert 25_000 <= run.steps_done < steps
    assert f"run 1 interrupted at step {run.steps_done:,}; continue with `trainq resume 1`" in (
        " ".join(stderr.split())
    )
    # The checkpoint is at the chunk where it stopped, not at the last 20,000-step mark.
    assert repository.list_checkpoints(1)[-1].step == run.steps_done

    # Damage that newest checkpoint: the resume says so and falls back to the one before.
    corrupt_checkpoint(tmp_path / "interrupted" / "trainq.db", run.steps_done)
    resumed = trainq_in(tmp_path / "interrupted", "resume", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    assert (
        f"checkpoint at step {run.steps_done} is corrupt (checksum mismatch); resuming from "
        "step 20000" in resumed.stderr
    )
    assert [row.step for row in repository.read_metrics(1)] == list(range(1, steps + 1))

    straight = trainq_in(tmp_path / "straight", "train", *options, "--seed", "5", "--json")
    assert straight.returncode == 0, straight.stderr
    uninterrupted = Repository(Database(f"sqlite:///{tmp_path / 'straight' / 'trainq.db'}"))
    final, expected = repository.latest_checkpoint(1), uninterrupted.latest_checkpoint(1)
    assert final is not None and expected is not None
    for name, array in expected.arrays.items():
        np.testing.assert_array_equal(final.arrays[name], array)


def test_a_second_ctrl_c_stops_at_once_and_still_leaves_the_run_resumable(tmp_path: Path) -> None:
    # Chunks of 50,000 steps take seconds: the second Ctrl-C comes long before the next one ends.
    options = ["--steps", "1000000", "--chunk-steps", "50000", "--checkpoint-every", "50000"]
    env = embedded_env(tmp_path)
    repository = Repository(Database(f"sqlite:///{tmp_path / 'trainq.db'}"))
    process = start_training(env, *options, "--seed", "6")
    try:
        wait_until_step(repository, process, 50_000)
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()

    assert process.returncode == INTERRUPTED, stderr
    run = repository.get_run(1)
    assert run.status is RunStatus.QUEUED
    assert run.lease_owner is None
    newest = repository.list_checkpoints(1)[-1].step
    assert f"it resumes from its checkpoint at step {newest:,}" in " ".join(stderr.split())
    assert newest >= 50_000


def test_cancel_is_the_way_to_cancel_an_interrupted_run(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    repository = Repository(Database(f"sqlite:///{tmp_path / 'trainq.db'}"))
    process = start_training(env, "--steps", "1000000", "--chunk-steps", "1000", "--seed", "7")
    try:
        wait_until_step(repository, process, 3_000)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == INTERRUPTED

    cancelled = trainq_in(tmp_path, "cancel", "1")

    assert cancelled.returncode == 0, cancelled.stderr
    assert repository.get_run(1).status is RunStatus.CANCELLED
