"""Work on idle CPU (``worker.cluster.idle_cpu``): a thread of its own under SCHED_IDLE, which ends
with the work, so the caller's threads keep their priority and none has to be raised again."""

from __future__ import annotations

import os
import threading
import time

import pytest

from worker.cluster.idle_cpu import idle_threads, run_on_idle_cpu

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling only")


def this_threads_policy() -> int:
    return os.sched_getscheduler(0)


def idle_threads_once_settled(expected: list[int]) -> list[int]:
    """This process's idle threads, once they are ``expected`` or after 5 s: a joined thread
    can outlive its ``join()`` by a moment in /proc."""
    deadline = time.monotonic() + 5
    while (found := idle_threads(os.getpid())) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def test_the_work_runs_in_another_thread_under_sched_idle_and_returns_its_result() -> None:
    caller = threading.get_ident()

    seen = run_on_idle_cpu(lambda: (threading.get_ident(), this_threads_policy()))

    assert seen[0] != caller
    assert seen[1] == os.SCHED_IDLE
    assert this_threads_policy() == os.SCHED_OTHER


def test_a_failure_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("no data")

    with pytest.raises(ValueError, match="no data"):
        run_on_idle_cpu(fail)
    assert this_threads_policy() == os.SCHED_OTHER


def test_threads_the_work_starts_are_idle_and_threads_started_before_are_not() -> None:
    release = threading.Event()
    before = threading.Thread(target=release.wait)
    before.start()
    started: list[threading.Thread] = []

    def start_a_thread() -> int:
        thread = threading.Thread(target=release.wait)
        thread.start()
        started.append(thread)
        assert thread.native_id is not None
        return thread.native_id

    try:
        inner = run_on_idle_cpu(start_a_thread)
        # Threads inherit their creator's policy: why the warm-up creates TensorFlow's pools in
        # a normal thread before it compiles on idle CPU.
        assert idle_threads_once_settled([inner]) == [inner]
        assert before.native_id not in idle_threads(os.getpid())
    finally:
        release.set()
        before.join()
        for thread in started:
            thread.join()
    assert idle_threads_once_settled([]) == []
