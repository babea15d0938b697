"""Which online workers consume which queue: asked once over Celery's control channel.

A ``--wait`` on a queue nobody consumes would otherwise wait forever in silence (a ``--device gpu``
run with no GPU worker). The question costs one broadcast and ``timeout_s`` of waiting for the
replies, so the CLI asks it once per command, in a background thread, never per poll.
"""

from __future__ import annotations

import threading

from storage import Settings
from worker.errors import BrokerUnavailableError

#: Long enough for workers on a loaded machine to answer a broadcast; it bounds the question.
CENSUS_TIMEOUT_S = 1.0


def consumers_by_queue(
    settings: Settings, timeout_s: float = CENSUS_TIMEOUT_S
) -> dict[str, set[str]]:
    """``{queue name: {worker node names}}`` for the workers that answered within ``timeout_s``.

    Raises:
        BrokerUnavailableError: the broker could not be reached.
    """
    from kombu.exceptions import OperationalError

    from worker.cluster.celery_app import create_app

    app = create_app(settings)
    try:
        replies = app.control.inspect(timeout=timeout_s).active_queues() or {}
    except OperationalError as exc:
        raise BrokerUnavailableError(
            f"cannot ask the workers which queues they take: {exc}"
        ) from None
    finally:
        app.close()
    consumers: dict[str, set[str]] = {}
    for node, queues in replies.items():
        for queue in queues or []:
            consumers.setdefault(str(queue["name"]), set()).add(str(node))
    return consumers


def busy_workers(settings: Settings, timeout_s: float = CENSUS_TIMEOUT_S) -> set[str]:
    """Node names of the workers that answered within ``timeout_s`` running at least one job.

    Raises:
        BrokerUnavailableError: the broker could not be reached.
    """
    from kombu.exceptions import OperationalError

    from worker.cluster.celery_app import create_app

    # Its own app, like consumers_by_queue: two broadcasts in flight never share a pool.
    app = create_app(settings)
    try:
        replies = app.control.inspect(timeout=timeout_s).active() or {}
    except OperationalError as exc:
        raise BrokerUnavailableError(f"cannot ask the workers what they run: {exc}") from None
    finally:
        app.close()
    return {str(node) for node, jobs in replies.items() if jobs}


class QueueCensus:
    """Asks ``consumers_by_queue`` once, in a daemon thread; ``result()`` never blocks."""

    def __init__(self, settings: Settings, timeout_s: float = CENSUS_TIMEOUT_S) -> None:
        self._answer: dict[str, set[str]] | None = None
        self._thread = threading.Thread(
            target=self._ask, args=(settings, timeout_s), name="trainq-census", daemon=True
        )
        self._thread.start()

    def _ask(self, settings: Settings, timeout_s: float) -> None:
        try:
            self._answer = consumers_by_queue(settings, timeout_s)
        except BrokerUnavailableError:
            self._answer = None  # the wait's own polling reports a database or broker problem

    def wait(self) -> dict[str, set[str]] | None:
        """The answer, waiting for it (at most the census timeout); None if the broker failed."""
        self._thread.join()
        return self._answer

    def result(self) -> dict[str, set[str]] | None:
        """The answer once it came (``{}`` when no worker answered), else None."""
        return None if self._thread.is_alive() else self._answer
