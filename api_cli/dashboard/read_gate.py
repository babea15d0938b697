"""Blocking reads off the dashboard's event loop, a bounded number at a time.

Every page reads the database (and the queue page the broker) through blocking client libraries.
Run on the event loop, one slow read would stall every other request; run in an unbounded thread
pool, a burst queues without end, holds a database connection per thread and, once the pool of
connections is empty, waits for ever. So each read runs in its own daemon thread, at most
``threads`` at once (no more than the read-only engine's pool, so a checkout never waits);
at most ``max_waiting`` requests wait for a turn, each for at most ``wait_s``, and the rest are
turned away at once with :class:`DashboardBusyError` (a 503 with ``Retry-After``).

Daemon threads, released by the thread itself when its read ends: a read still running when the
server stops (SIGTERM) neither holds the process open nor lets a new read start in its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from storage.errors import TrainqError

T = TypeVar("T")

#: Reads running at once. A page's read is mostly Python (SQLAlchemy rows, Jinja2), so threads
#: share one GIL: more of them only take it from the event loop, which then answers late. Under
#: a burst of 1,000 requests (100 at once) 2 threads served the most per second with the lowest
#: p95 on SQLite and PostgreSQL (4 and 8: p95 twice as long). Far below the read-only engine's
#: pool (5, and 10 more on demand), so a read never waits for a connection.
READ_THREADS: Final = 2
#: Requests waiting for a read thread; the next one is answered 503 at once.
MAX_WAITING_READS: Final = 128
#: The longest a request waits for a read thread before it is answered 503.
READ_WAIT_S: Final = 10.0
#: What a 503 tells the client (``Retry-After``, seconds): about one busy read's time.
RETRY_AFTER_S: Final = 1


class DashboardBusyError(TrainqError):
    """Raised when the dashboard has more requests waiting than it serves: try again shortly."""


class ReadGate:
    """Runs blocking reads in daemon threads: ``threads`` at once, ``max_waiting`` in line."""

    def __init__(
        self,
        threads: int = READ_THREADS,
        max_waiting: int = MAX_WAITING_READS,
        wait_s: float = READ_WAIT_S,
    ) -> None:
        self._threads = threads
        self._max_waiting = max_waiting
        self._wait_s = wait_s
        self._running = 0
        self._admitted = 0  # running and waiting
        self._slots: asyncio.Semaphore | None = None  # bound to the server's loop on first use

    @property
    def running(self) -> int:
        """Reads running now (threads started and not yet finished)."""
        return self._running

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a daemon thread, once a slot is free.

        Raises:
            DashboardBusyError: ``max_waiting`` requests already wait, or no slot came free
                within ``wait_s``.
            Exception: whatever ``work`` raised.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._threads)
        # Counted here, before any await, so that a burst arriving at once is counted exactly.
        if self._admitted >= self._threads + self._max_waiting:
            raise DashboardBusyError(
                f"the dashboard is busy ({self._threads} reads running, {self._max_waiting} "
                f"waiting); try again in {RETRY_AFTER_S} s"
            )
        self._admitted += 1
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            self._admitted -= 1
            raise DashboardBusyError(
                f"the dashboard is busy: no read could start within {self._wait_s:g} s; "
                f"try again in {RETRY_AFTER_S} s"
            ) from None
        except BaseException:  # cancelled while waiting: the client went away
            self._admitted -= 1
            raise
        self._running += 1
        # No await between the slot and the thread's start: the slot is the thread's from here.
        return await in_daemon_thread(work, *args, when_done=self._release)

    def _release(self) -> None:
        assert self._slots is not None
        self._running -= 1
        self._admitted -= 1
        self._slots.release()


async def in_daemon_thread(
    work: Callable[..., T], *args: Any, when_done: Callable[[], None] | None = None
) -> T:
    """``work(*args)`` in a new daemon thread, awaited without blocking the event loop.

    ``when_done`` runs on the event loop when the thread ends, even if the awaiting request was
    cancelled meanwhile (a client gone, the server stopping): a slot is freed by the end of the
    read it was taken for, never earlier.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if when_done is not None:
            when_done()
        if answer.done():
            return  # cancelled: nobody reads this answer
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = work(*args)
        except BaseException as raised:  # handed to the awaiting request, which re-raises it
            error = raised
        # RuntimeError: the loop is closed, the server has stopped and nobody waits.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name="trainq-dashboard-read", daemon=True).start()
    return await answer
