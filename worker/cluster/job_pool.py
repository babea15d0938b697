"""The prefork pool: noticing a dead job process within half a second rather than five, and letting
a stopping worker's job processes exit at once.

Billiard finds an exited pool process in ``maintain_pool``, which Celery's event loop runs when
the process's sentinel becomes readable and, as a fallback, every 5 s. Measured here, a SIGKILLed
job process was often noticed only by that timer (0.05-4.3 s after the kill over five kills),
and until it is noticed its run stays leased to a dead process and the worker takes no other job
(``worker.cluster.job_request`` releases the run when the pool reports the loss). The timer runs
every 0.5 s instead: one ``waitpid`` per process, nothing more. No setting reaches that interval,
so :class:`JobAsynPool` overrides Celery's ``AsynPool.timers`` (``docs/internals.md``).

A pool process that leaves its loop tells the parent so (a ``DEATH`` message) and then sleeps a
second, for the parent to answer with SIGTERM, before it exits. When the worker stops, every job
process leaves that way, and ``docker stop`` or a supervisor restarting the worker waited that
second for nothing: the worker is going and its runs were handed back. A job process of a
stopping worker (``worker.cluster.shutdown``) ends in Celery's public ``worker_process_shutdown``
signal instead, which billiard sends (through Celery's ``process_destructor``) just before that
message and that second.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

from celery.concurrency.asynpool import AsynPool
from celery.concurrency.prefork import TaskPool
from celery.signals import worker_process_shutdown

from worker.cluster.shutdown import WORKER_STOPPING

#: How often the pool looks for exited job processes (Celery's own interval is 5 s).
MAINTAIN_EVERY_S: Final = 0.5


@worker_process_shutdown.connect
def exit_at_once_when_stopping(exitcode: int = 0, **_: Any) -> None:
    """In a job process leaving its loop: exit now, with its exit code, if the worker is stopping.

    Nothing is lost by skipping billiard's ``DEATH`` message and its second of sleep: the message
    only asks the parent for a SIGTERM to end this very process, and the parent finds the exit by
    the process's sentinel, as it finds a SIGKILLed one. Not putting the message also means that
    no SIGTERM can interrupt a half-written put and leave the result queue locked. Receivers of
    this signal connected after this one do not run in a stopping worker (trainq has none).
    """
    if WORKER_STOPPING.is_set():
        os._exit(exitcode)


class JobAsynPool(AsynPool):
    """Celery's asynchronous prefork pool with a shorter maintenance interval."""

    @property
    def timers(self) -> dict[Callable[[], Any], float]:
        return {self.maintain_pool: MAINTAIN_EVERY_S}


class JobTaskPool(TaskPool):
    """The ``worker_pool`` trainq's workers use: prefork, with :class:`JobAsynPool`."""

    Pool = JobAsynPool
