"""The job processes' exit (``worker.cluster.job_pool.JobProcess``): a process leaving its loop
tells the pool so, and only a stopping worker's process skips billiard's second of waiting
afterwards."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator
from typing import Any

import billiard.pool
import pytest
from billiard.pool import DEATH

from worker.cluster.job_pool import JobAsynPool, JobProcess
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
    """Fork; in the child, run ``JobProcess._do_exit`` with billiard's sleep recorded instead of
    slept. Returns what the child wrote to the pipe, in order, and its exit status."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(read_end)
            billiard.pool.time.sleep = lambda seconds: os.write(  # type: ignore[attr-defined]
                write_end, pickle.dumps(("slept", seconds))
            )
            process = JobProcess.__new__(JobProcess)  # no queues of a real pool are needed
            process.outq = PipeQueue(write_end)
            process.on_exit = None
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


def test_the_pool_uses_the_job_process_loop() -> None:
    assert JobAsynPool.Worker is JobProcess


def test_a_stopping_workers_job_process_says_it_exits_and_exits_at_once(stopping: None) -> None:
    messages, code = exit_in_a_child(0)

    assert code == 0
    assert len(messages) == 1
    (kind, (tag, (_, exitcode))) = messages[0]
    assert (kind, tag, exitcode) == ("put", DEATH, 0)


def test_otherwise_billiard_waits_for_the_pool_as_it_always_did() -> None:
    messages, code = exit_in_a_child(3)

    assert code == 3
    assert [message[0] for message in messages] == ["put", "slept"]
    assert messages[1][1] == 1  # billiard's one second, for the parent to answer
