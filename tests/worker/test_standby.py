"""A worker's spare job processes: its consumer reserves one message per job slot, and job
processes warm up one at a time (``worker.cluster.standby``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.cluster.standby import (
    create_warm_up_lock,
    jobs_at_once,
    remove_warm_up_lock,
    warm_up_lock_path,
)

#: A child of this test process that takes the warm-up turn, says when, and holds it a while.
_TAKE_TURN = """
import sys, time
from worker.cluster.standby import warm_up_turn
with warm_up_turn(spare=sys.argv[2] == "spare"):
    print(f"{time.monotonic()} in", flush=True)
    time.sleep(float(sys.argv[1]))
    print(f"{time.monotonic()} out", flush=True)
"""


@pytest.fixture
def lock_file() -> Iterator[Path]:
    create_warm_up_lock()  # as the worker's main process does before its pool forks
    yield warm_up_lock_path(os.getpid())
    remove_warm_up_lock()


def take_turn(hold_s: float, kind: str = "needed") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _TAKE_TURN, str(hold_s), kind], stdout=subprocess.PIPE, text=True
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


def test_spares_take_turns_of_their_own(lock_file: Path) -> None:
    # The needed process holds its turn longest, so the spares' turns fall inside it even when
    # the three interpreters start at different speeds.
    needed, spare, next_spare = take_turn(3.0), take_turn(1.0, "spare"), take_turn(1.0, "spare")
    spans = {"needed": times(needed), "spare": times(spare), "next spare": times(next_spare)}
    first_spare, second_spare = sorted([spans["spare"], spans["next spare"]])
    assert second_spare[0] >= first_spare[1], f"two spares warmed up at once: {spans}"
    # A spare's turn does not wait for a needed process's.
    assert first_spare[0] < spans["needed"][1], f"a spare waited for a needed process: {spans}"


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


#: A child of this test process that marks itself warming up and lives until its stdin closes.
_WARM_CHILD = """
import sys
from worker.cluster.standby import mark_warming
mark_warming()
print("warm", flush=True)
sys.stdin.read()
"""

#: A child of this test process that prints how many of its siblings are warm or warming.
_COUNT_WARM = "from worker.cluster.standby import warm_or_warming; print(warm_or_warming())"


def count_warm_siblings() -> int:
    out = subprocess.run(
        [sys.executable, "-c", _COUNT_WARM], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return int(out)


def test_warm_or_warming_job_processes_are_counted_while_they_live(lock_file: Path) -> None:
    with contextlib.ExitStack() as stack:
        children = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", _WARM_CHILD],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(2)
        ]
        for child in children:
            stack.callback(child.kill)  # runs before each Popen's own exit, which waits for it
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "warm"
        assert count_warm_siblings() == 2

        children[0].send_signal(signal.SIGKILL)  # the kernel drops its lock: no longer counted
        children[0].wait(timeout=30)
        assert count_warm_siblings() == 1
    assert count_warm_siblings() == 0
    marks = list(lock_file.parent.glob(f"trainq-warm-{os.getpid()}-*.lock"))
    assert len(marks) == 2
    remove_warm_up_lock()  # the worker's shutdown removes its job processes' marks too
    assert not any(mark.exists() for mark in marks)


def test_outside_a_worker_a_process_leaves_no_mark() -> None:
    child = subprocess.run(
        [sys.executable, "-c", _WARM_CHILD],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert child.stdout.strip() == "warm"
    assert not list(Path(tempfile.gettempdir()).glob(f"trainq-warm-{os.getpid()}-*.lock"))
