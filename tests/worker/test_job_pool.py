"""The job processes' exit (``worker.cluster.job_pool``): a process leaving its loop tells the pool
so and waits billiard's second, except in a stopping worker, where Celery's
``worker_process_shutdown`` signal ends it at once."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator
from typing import Any

import billiard.pool
import pytest
from billiard.pool import DEATH
from celery.concurrency.asynpool import AsynPool
from celery.concurrency.prefork import process_destructor

from worker.cluster.job_pool import MAINTAIN_EVERY_S, JobAsynPool, JobTaskPool
from worker.cluster.shutdown import WORKER_STOPPING


class PipeQueue:
    """The one method of the pool's result queue that an exiting process uses, over a pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def put(self, message: Any) -> None:
        os.write(self.fd, pickle.dumps(("put", message)))


@pytest.fixture
def stopping() -> Iterator[None]:
    WORKER_STOPPING.set()
    yield
    WORKER_STOPPING.clear()


def exit_in_a_child(exitcode: int) -> tuple[list[Any], int]:
    """Fork; in the child, run the exit of billiard's own pool process loop, with Celery's
    ``process_destructor`` as its exit callback (as Celery's prefork pool sets it) and billiard's
    sleep recorded instead of slept. Returns what the child wrote to the pipe, in order, and its
    exit status."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(read_end)
            billiard.pool.time.sleep = lambda seconds: os.write(  # type: ignore[attr-defined]
                write_end, pickle.dumps(("slept", seconds))
            )
            process: Any = billiard.pool.Worker.__new__(billiard.pool.Worker)  # no pool's queues
            process.outq = PipeQueue(write_end)
            process.on_exit = process_destructor
            process._do_exit(os.getpid(), exitcode)
        finally:
            os._exit(99)  # only if _do_exit returned or raised
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    stream, messages = io.BytesIO(b"".join(chunks)), []
    while stream.tell() < len(stream.getbuffer()):
        messages.append(pickle.load(stream))
    return messages, os.waitstatus_to_exitcode(status)


def test_the_workers_pool_is_the_job_pool() -> None:
    assert JobTaskPool.Pool is JobAsynPool


def test_the_pool_looks_for_exited_processes_every_half_second() -> None:
    pool = JobAsynPool.__new__(JobAsynPool)  # the timers need no started pool

    assert list(pool.timers.values()) == [MAINTAIN_EVERY_S]
    assert list(AsynPool.timers.fget(pool).values()) == [5.0]  # type: ignore[attr-defined]


def test_a_stopping_workers_job_process_exits_at_once_with_its_exit_code(stopping: None) -> None:
    messages, code = exit_in_a_child(3)

    assert code == 3
    assert messages == []  # neither the DEATH message nor the second of waiting for its answer


def test_otherwise_billiard_says_it_exits_and_waits_for_the_pool_as_it_always_did() -> None:
    messages, code = exit_in_a_child(3)

    assert code == 3
    assert [message[0] for message in messages] == ["put", "slept"]
    (_, (tag, (_, exitcode))) = messages[0]
    assert (tag, exitcode) == (DEATH, 3)
    assert messages[1][1] == 1  # billiard's one second, for the parent to answer
