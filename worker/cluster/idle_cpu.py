"""Running set-up work on idle CPU only: in a thread under Linux's ``SCHED_IDLE`` policy.

A spare job process warms up (``worker.cluster.warm_up``) while its worker's other process trains.
On a machine whose cores are all training, that warm-up (2-3 CPU-seconds, most of it TensorFlow's
import) takes its share of the cores from the training jobs: measured in the chaos bench, every
killed job process's replacement and every restarted worker's spare slowed the runs in training.
A spare is not needed until a job process dies, so it should warm up only on CPU time nobody else
wants. ``SCHED_IDLE`` is exactly that, and lowering a thread's priority needs no privilege.

Raising it back does (``CAP_SYS_NICE``, or an ``RLIMIT_NICE`` of 20, which containers rarely
grant), so nothing here ever raises a priority: the work runs in a *thread of its own* that ends
with the work, and the process's other threads, the one that will run jobs among them, keep their
normal priority. Threads inherit their creator's policy, so whatever threads the idle work starts
stay idle for good: the caller creates the threads that jobs will use (TensorFlow's pools,
``worker.training.runtime.start_thread_pools``) in a normal thread first.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Final, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``os.SCHED_IDLE`` where the platform has it (Linux); elsewhere the work runs at normal priority.
_SCHED_IDLE: Final = getattr(os, "SCHED_IDLE", None)


def run_on_idle_cpu(work: Callable[[], T], *, name: str = "trainq-idle-cpu") -> T:
    """Run ``work`` in a new thread scheduled ``SCHED_IDLE`` and return its result.

    The calling thread waits for it. Where the policy cannot be set (not Linux, or refused), the
    work runs in that thread at normal priority: slower for the neighbours, never wrong.

    Raises:
        Whatever ``work`` raised, re-raised in the calling thread.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        _lower_this_threads_priority()
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the caller, who decides
            failure.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _lower_this_threads_priority() -> None:
    """Put the calling thread (only it) under ``SCHED_IDLE``, where the platform allows it."""
    if _SCHED_IDLE is None:
        return
    try:
        os.sched_setscheduler(0, _SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
    except OSError as exc:
        logger.debug("SCHED_IDLE refused (%s); the work runs at normal priority", exc)


def idle_threads(pid: int) -> list[int]:
    """The thread ids of process ``pid`` scheduled ``SCHED_IDLE`` (tests and diagnostics)."""
    if _SCHED_IDLE is None:
        return []
    found = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tids:
        try:
            if os.sched_getscheduler(int(tid)) == _SCHED_IDLE:
                found.append(int(tid))
        except OSError:  # the thread ended meanwhile
            continue
    return found
