"""The prefork pool, noticing a dead job process within half a second rather than five.

Billiard finds an exited pool process in ``maintain_pool``, which Celery's event loop runs when
the process's sentinel becomes readable and, as a fallback, every 5 s. Measured here, a SIGKILLed
job process was often noticed only by that timer (0.05-4.3 s after the kill over five kills),
and until it is noticed its run stays leased to a dead process and the worker takes no other job
(``worker.job_request`` releases the run when the pool reports the loss). The timer runs every
0.5 s instead: one ``waitpid`` per process, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from celery.concurrency.asynpool import AsynPool
from celery.concurrency.prefork import TaskPool

#: How often the pool looks for exited job processes (Celery's own interval is 5 s).
MAINTAIN_EVERY_S: Final = 0.5


class JobAsynPool(AsynPool):
    """Celery's asynchronous prefork pool with a shorter maintenance interval."""

    @property
    def timers(self) -> dict[Callable[[], Any], float]:
        return {self.maintain_pool: MAINTAIN_EVERY_S}


class JobTaskPool(TaskPool):
    """The ``worker_pool`` trainq's workers use: prefork, with :class:`JobAsynPool`."""

    Pool = JobAsynPool
