"""A worker's spare job processes: its consumer reserves one message per job slot, and job
processes warm up one at a time (``worker.standby``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.standby import (
    create_warm_up_lock,
    jobs_at_once,
    remove_warm_up_lock,
    warm_up_lock_path,
)

#: A child of this test process that takes the warm-up turn, says when, and holds it a while.
_TAKE_TURN = """
import sys, time
from worker.standby import warm_up_turn
with warm_up_turn():
    print(f"{time.monotonic()} in", flush=True)
    time.sleep(float(sys.argv[1]))
    print(f"{time.monotonic()} out", flush=True)
"""


@pytest.fixture
def lock_file() -> Iterator[Path]:
    create_warm_up_lock()  # as the worker's main process does before its pool forks
    yield warm_up_lock_path(os.getpid())
    remove_warm_up_lock()


def take_turn(hold_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _TAKE_TURN, str(hold_s)], stdout=subprocess.PIPE, text=True
    )


def times(process: subprocess.Popen[str]) -> tuple[float, float]:
    out, _ = process.communicate(timeout=60)
    entered, left = (float(line.split()[0]) for line in out.splitlines())
    return entered, left


def test_a_worker_runs_one_job_per_slot_whatever_its_standbys() -> None:
    assert jobs_at_once(2, 1) == 1
    assert jobs_at_once(3, 1) == 2
    assert jobs_at_once(1, 0) == 1
    assert jobs_at_once(1, 1) == 1  # never 0: a prefetch count of 0 means unlimited to Celery


def test_job_processes_take_turns_to_warm_up(lock_file: Path) -> None:
    assert lock_file.exists()
    first, second = take_turn(1.0), take_turn(1.0)
    spans = sorted([times(first), times(second)])
    assert spans[1][0] >= spans[0][1], f"two warm-ups at once: {spans}"


def test_a_process_killed_during_its_turn_does_not_block_the_next(lock_file: Path) -> None:
    holder = take_turn(60.0)
    assert holder.stdout is not None
    assert holder.stdout.readline().endswith(" in\n")  # it holds the turn now
    waiting = take_turn(0.0)
    time.sleep(0.3)
    assert waiting.poll() is None  # still waiting for its turn
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=10)
    entered, _ = times(waiting)
    assert entered > 0


def test_without_the_lock_file_nothing_waits() -> None:
    remove_warm_up_lock()
    first, second = take_turn(1.0), take_turn(1.0)
    spans = sorted([times(first), times(second)])
    assert spans[1][0] < spans[0][1], f"the warm-ups waited for each other: {spans}"
