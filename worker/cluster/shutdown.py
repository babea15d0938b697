"""The worker is stopping: a flag the main process raises and its job processes read.

``trainq worker`` asked to stop (SIGTERM, Ctrl-C, ``docker stop``) should not wait for a long
run to finish, nor kill it and lose up to a checkpoint interval of work. Its job processes stop
at their next chunk boundary, store a checkpoint there and hand their run back to the queue.

The signal reaches only the main process (``docker stop`` through tini, ``kill PID``); a job
process ignores SIGINT and dies on SIGTERM. So the main process raises a flag in one byte of
anonymous shared memory, mapped before the pool forks its job processes: every job process,
including one forked later, sees the same byte. Setting a byte is safe in a signal handler, and
reading it costs nothing at a chunk boundary. Nothing here knows Celery.
"""

from __future__ import annotations

import mmap
from typing import Final


class ShutdownFlag:
    """One byte shared by a process and the children it forks after creating the flag."""

    def __init__(self) -> None:
        # An anonymous mapping is MAP_SHARED: a fork shares it instead of copying it.
        self._byte = mmap.mmap(-1, 1)

    def set(self) -> None:
        """Raise the flag (from any process that shares it, also from a signal handler)."""
        self._byte[0] = 1

    def clear(self) -> None:
        """Lower the flag (tests, and a worker started again in the same process)."""
        self._byte[0] = 0

    def is_set(self) -> bool:
        """True once :meth:`set` was called in this process or one that shares the flag."""
        return self._byte[0] == 1


#: Raised by the worker's main process when it starts shutting down (``worker.cluster.lifecycle``).
#: Created at import, so it exists before Celery forks the pool.
WORKER_STOPPING: Final = ShutdownFlag()
