"""A warm standby job process: a job process that dies is replaced in a second, not in a warm-up.

Every job process warms up before its first job (``worker.cluster.warm_up``: TensorFlow, the data,
the compiled chunk; 3-5 s on two busy cores). When a job process dies (SIGKILL, out of memory), the
main process releases its run at once (``worker.cluster.job_request``), but the worker itself could
take its next job only after the pool had forked a replacement and that replacement had warmed up.

With ``--standby N`` the pool holds N processes more than the worker runs jobs at once, and
:class:`StandbyConsumer` reserves only as many messages as jobs run at once: the extra processes
stay idle and warm. When a job process dies, the next message goes to a warm standby at once, and
the replacement that billiard forks warms up in the background and becomes the new standby.
Warm-ups take turns (:func:`warm_up_turn`), so a worker's first job waits for one warm-up, not
for several competing for the same cores. A process that finds, in its turn, as many siblings
warm or warming up as the worker has job slots (:func:`warm_or_warming`) is a spare: it gives
the turn back at once and warms up on idle CPU only (``worker.cluster.idle_cpu``). The price is
memory: each standby holds TensorFlow and the data set (``docs/cluster.md`` has the figure).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from celery.worker.consumer import Consumer

#: The conf key ``trainq worker`` sets: how many of the pool's processes are standbys.
STANDBY_CONF_KEY: Final = "trainq_standby_processes"
#: The conf key ``trainq worker`` sets: how many jobs the worker runs at once.
JOB_SLOTS_CONF_KEY: Final = "trainq_job_slots"
#: Where the warm-up turns' locks live: one file per worker main process for the processes its
#: job slots need, one for its spares.
_LOCK_NAME: Final = "trainq-warm-up-{pid}.lock"
_SPARE_LOCK_NAME: Final = "trainq-spare-warm-up-{pid}.lock"
#: The mark of a job process that is warm or warming up: a file it holds locked while it lives.
_WARM_MARK_NAME: Final = "trainq-warm-{main}-{pid}.lock"

#: This process's mark, held open (and so locked) until the process ends.
_held_marks: list[BinaryIO] = []


def jobs_at_once(pool_processes: int, standby: int) -> int:
    """How many jobs a worker runs at once: its pool's processes less its standbys (at least one;
    a prefetch count of 0 would mean *unlimited* to Celery)."""
    return max(1, pool_processes - standby)


class StandbyConsumer(Consumer):
    """Celery's consumer, reserving one message per job slot rather than per pool process.

    ``initial_prefetch_count`` sets the broker QoS at every (re)connection and
    ``max_prefetch_count`` caps how far Celery restores it after a reconnection; both are
    computed from the pool size upstream, so both are pinned to the job slots here. (Upstream
    also recomputes them when an autoscaler grows the pool; ``trainq worker`` never autoscales.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial_prefetch_count = self.max_prefetch_count

    @property
    def max_prefetch_count(self) -> int:
        """The most messages this worker may hold unacknowledged: one per job slot."""
        conf = self.app.conf
        standby = int(conf.get(STANDBY_CONF_KEY, 0))
        slots = jobs_at_once(int(self.pool.limit), standby)  # the pool starts later
        return slots * int(conf.worker_prefetch_multiplier)


def warm_up_lock_path(main_pid: int, *, spare: bool = False) -> Path:
    """The lock file whose holder is the one job process of worker ``main_pid`` warming up (the
    one spare warming up, with ``spare``)."""
    name = _SPARE_LOCK_NAME if spare else _LOCK_NAME
    return Path(tempfile.gettempdir()) / name.format(pid=main_pid)


def create_warm_up_lock() -> None:
    """Create this (main) process's warm-up lock files, before the pool forks."""
    for spare in (False, True):
        with contextlib.suppress(OSError):  # without it, warm-ups do not take turns
            warm_up_lock_path(os.getpid(), spare=spare).touch()


def remove_warm_up_lock() -> None:
    """Remove this (main) process's warm-up lock files and its job processes' warm marks, when
    the worker shuts down."""
    for spare in (False, True):
        with contextlib.suppress(OSError):
            warm_up_lock_path(os.getpid(), spare=spare).unlink()
    for mark in _warm_marks(os.getpid()):
        with contextlib.suppress(OSError):
            mark.unlink()


def mark_warming() -> None:
    """Say that this job process is warming up or warm, for as long as it lives: an exclusive
    ``flock`` on a file of its own, which the kernel releases when the process ends, even by
    SIGKILL. Nothing happens in a process that is no worker's job process (its parent made no
    warm-up lock)."""
    if not warm_up_lock_path(os.getppid()).exists():
        return
    path = Path(tempfile.gettempdir()) / _WARM_MARK_NAME.format(main=os.getppid(), pid=os.getpid())
    try:
        handle = path.open("ab")
    except OSError:  # unmarked, this process is only not counted: its siblings warm normally
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return
    _held_marks.append(handle)


def warm_or_warming() -> int:
    """How many job processes of this process's worker (``getppid()``) are alive and warm or
    warming up: the marks that are locked."""
    count = 0
    for path in _warm_marks(os.getppid()):
        try:
            with path.open("rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            count += 1  # its owner holds it: alive and warm
        except OSError:
            continue  # removed meanwhile
    return count


def _warm_marks(main_pid: int) -> list[Path]:
    pattern = _WARM_MARK_NAME.format(main=main_pid, pid="*")
    return sorted(Path(tempfile.gettempdir()).glob(pattern))


@contextlib.contextmanager
def warm_up_turn(*, spare: bool = False) -> Iterator[None]:
    """Wait until no sibling job process is warming up, and hold the turn until the block ends.
    Spares take turns of their own (``spare``): two on idle CPU would share the core a dead job
    freed, and the older one, further on, is the one its worker is waiting for.

    An ``flock`` on the file the main process (the parent) created: the kernel releases it when
    its holder exits, even by SIGKILL, so a process killed mid-warm-up never blocks the next.
    Without that file (not a worker's job process, or it could not be created) nothing waits.
    """
    try:
        handle = warm_up_lock_path(os.getppid(), spare=spare).open("rb")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
