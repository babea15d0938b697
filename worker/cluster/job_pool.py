"""The prefork pool: noticing a dead job process within half a second rather than five, and letting
a stopping worker's job processes exit at once.

Billiard finds an exited pool process in ``maintain_pool``, which Celery's event loop runs when
the process's sentinel becomes readable and, as a fallback, every 5 s. Measured here, a SIGKILLed
job process was often noticed only by that timer (0.05-4.3 s after the kill over five kills),
and until it is noticed its run stays leased to a dead process and the worker takes no other job
(``worker.cluster.job_request`` releases the run when the pool reports the loss). The timer runs
every 0.5 s instead: one ``waitpid`` per process, nothing more.

A pool process that leaves its loop tells the parent so (a ``DEATH`` message) and then sleeps a
second, for the parent to answer with SIGTERM, before it exits. When the worker stops, every job
process leaves that way, and ``docker stop`` or a supervisor restarting the worker waited that
second for nothing: the worker is going and its runs were handed back. A job process of a
stopping worker (``worker.cluster.shutdown``) exits as soon as its message is written.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any, Final

from billiard.pool import DEATH, EX_FAILURE, EX_OK
from celery.concurrency.asynpool import AsynPool, Worker
from celery.concurrency.prefork import TaskPool

from worker.cluster.shutdown import WORKER_STOPPING

#: How often the pool looks for exited job processes (Celery's own interval is 5 s).
MAINTAIN_EVERY_S: Final = 0.5


class JobProcess(Worker):
    """The loop of one job process; it exits without waiting when its worker is stopping."""

    # Set by billiard; the type stubs leave them out.
    outq: Any
    on_exit: Callable[[int, int], None] | None

    def _do_exit(self, pid: int, exitcode: int | None, exc: BaseException | None = None) -> None:
        if not WORKER_STOPPING.is_set():
            super()._do_exit(pid, exitcode, exc)  # type: ignore[misc]  # waits, then exits
            return
        code = exitcode if exitcode is not None else (EX_FAILURE if exc else EX_OK)
        if self.on_exit is not None:
            self.on_exit(pid, code)
        # As billiard does: the parent's SIGTERM arriving during the put would leave outq locked.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            self.outq.put((DEATH, (pid, code)))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os._exit(code)


class JobAsynPool(AsynPool):
    """Celery's asynchronous prefork pool with a shorter maintenance interval and job processes
    that leave a stopping worker at once."""

    Worker = JobProcess

    @property
    def timers(self) -> dict[Callable[[], Any], float]:
        return {self.maintain_pool: MAINTAIN_EVERY_S}


class JobTaskPool(TaskPool):
    """The ``worker_pool`` trainq's workers use: prefork, with :class:`JobAsynPool`."""

    Pool = JobAsynPool
