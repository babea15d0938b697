"""The broker's state for the queue page: one question at a time, shared and reused.

Asking the broker costs about a second (a broadcast to the workers and the wait for their
replies) and goes through one process-wide Celery app whose connection pools deadlock when many
threads broadcast at once: forty concurrent ``GET /api/queue`` used to wedge the queue view for
good. So one question is in flight at most; every request that arrives meanwhile waits for that
same answer, and an answer is reused for ``fresh_s``. A request waits at most ``wait_s``, then
shows that the broker has not answered (the question goes on, and the next request may get it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from api_cli.dashboard.read_gate import in_daemon_thread

#: How long an answer is shown before the broker is asked again (the pages poll every 2 s).
FRESH_S: Final = 2.0
#: The longest a request waits for the broker's answer (a census takes about 1.3 s).
WAIT_S: Final = 5.0

BrokerState = dict[str, Any]


class BrokerSnapshot:
    """Coalesces and caches ``ask()``, a blocking question to the broker."""

    def __init__(
        self,
        ask: Callable[[], BrokerState],
        *,
        fresh_s: float = FRESH_S,
        wait_s: float = WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask = ask
        self._fresh_s = fresh_s
        self._wait_s = wait_s
        self._clock = clock
        self._latest: tuple[float, BrokerState] | None = None
        self._asking: asyncio.Future[BrokerState] | None = None
        #: How many times the broker has been asked (what the coalescing saves is counted).
        self.questions = 0

    async def read(self) -> BrokerState:
        """The newest answer if fresh, else the answer of the question in flight (or a new one).

        Never raises for the broker's sake: a broker that does not answer within ``wait_s`` is
        a state like any other (``ok`` false, with a message).
        """
        if self._latest is not None and self._clock() - self._latest[0] < self._fresh_s:
            return self._latest[1]
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._refresh())
        try:
            # shield: a request that gives up (or goes away) never cancels the others' answer.
            return await asyncio.wait_for(asyncio.shield(self._asking), self._wait_s)
        except TimeoutError:
            return {
                "configured": True,
                "ok": False,
                "message": f"the broker has not answered within {self._wait_s:g} s; "
                "the page asks again when it reloads",
            }

    async def _refresh(self) -> BrokerState:
        self.questions += 1
        try:
            state = await in_daemon_thread(self._ask)
        finally:
            self._asking = None
        self._latest = (self._clock(), state)
        return state
