"""What the broker says at scrape time: list lengths, who consumes each queue, who is busy.

Asked through the same boundary as ``trainq status`` (``worker.cluster.publisher`` for the list
lengths, ``worker.cluster.census`` for the workers), imported only on a cluster, so an embedded
exporter never imports Celery. A question runs in a daemon thread and the scrape waits for it at
most ``deadline_s``: a broker that hangs costs one scrape its broker figures, never the scrape. One
question is in flight at a time; while a stuck one lasts, scrapes say so rather than pile up
threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.redaction import redact
from worker.errors import BrokerUnavailableError

if TYPE_CHECKING:
    from storage import Settings

#: How much longer than the census's own reply timeout a question may take (connecting, the
#: list lengths) before the scrape goes on without it.
ANSWER_MARGIN_S = 2.0


@dataclass(frozen=True)
class BrokerReading:
    """The broker's side of the queue at one moment."""

    #: Messages waiting in each queue's Redis list (reserved ones not counted).
    list_lengths: Mapping[str, int]
    #: Node names of the online workers consuming each queue.
    consumers: Mapping[str, frozenset[str]]
    #: Node names of the online workers running at least one job.
    busy: frozenset[str]


class BrokerQuestion:
    """One question to the broker, running in a daemon thread; :meth:`answer` waits for it."""

    def __init__(self, settings: Settings, census_timeout_s: float) -> None:
        self._outcome: BrokerReading | BaseException | None = None
        self._thread = threading.Thread(
            target=self._ask,
            args=(settings, census_timeout_s),
            name="trainq-exporter-broker",
            daemon=True,
        )
        self._thread.start()

    def running(self) -> bool:
        """True while the broker has not answered (nor failed)."""
        return self._thread.is_alive()

    def answer(self, deadline_s: float) -> BrokerReading:
        """The reading, waiting at most ``deadline_s``.

        Raises:
            BrokerUnavailableError: no answer in time, or the broker failed (the reason redacted).
        """
        self._thread.join(deadline_s)
        outcome = self._outcome
        if self._thread.is_alive() or outcome is None:
            raise BrokerUnavailableError(f"the broker did not answer within {deadline_s:g} s")
        if isinstance(outcome, BaseException):
            raise BrokerUnavailableError(redact(f"the broker failed: {outcome}"))
        return outcome

    def _ask(self, settings: Settings, census_timeout_s: float) -> None:
        from worker.cluster.census import busy_workers, consumers_by_queue
        from worker.cluster.publisher import publisher_for

        consumers: list[dict[str, set[str]]] = []
        failures: list[BaseException] = []

        def ask_consumers() -> None:
            try:
                consumers.append(consumers_by_queue(settings, census_timeout_s))
            except Exception as exc:  # kombu's and Celery's own errors included
                failures.append(exc)

        # The two broadcasts each wait out the census timeout: ask them side by side.
        census = threading.Thread(target=ask_consumers, name="trainq-exporter-census", daemon=True)
        census.start()
        try:
            lengths = publisher_for(settings).queue_depths()
            busy = busy_workers(settings, census_timeout_s)
            census.join()
            if failures:
                raise failures[0]
            self._outcome = BrokerReading(
                list_lengths=lengths,
                consumers={queue: frozenset(nodes) for queue, nodes in consumers[0].items()},
                busy=frozenset(busy),
            )
        except Exception as exc:
            self._outcome = exc


class BrokerProbe:
    """Asks the broker once per scrape, never with more than one question in flight."""

    def __init__(self, settings: Settings, census_timeout_s: float) -> None:
        self._settings = settings
        self._census_timeout_s = census_timeout_s
        self.deadline_s = census_timeout_s + ANSWER_MARGIN_S
        self._lock = threading.Lock()
        self._latest: BrokerQuestion | None = None

    def ask(self) -> BrokerQuestion:
        """Start this scrape's question (it runs while the database is read).

        Raises:
            BrokerUnavailableError: the previous scrape's question is still unanswered.
        """
        with self._lock:
            if self._latest is not None and self._latest.running():
                raise BrokerUnavailableError(
                    "the broker has not answered an earlier scrape's question yet"
                )
            self._latest = BrokerQuestion(self._settings, self._census_timeout_s)
            return self._latest
