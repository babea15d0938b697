"""The exporter's collector: every scrape reads the database and asks the broker, side by side.

Nothing is counted in this process: a scrape is a snapshot of the database (one read-only
transaction, ``storage.metrics_reads``) and of the broker (``broker_reading``), so two exporters,
or one restarted, report the same numbers. A source that fails costs its own figures only: the
scrape still answers, with ``trainq_database_up`` or ``trainq_broker_up`` at 0. Scrapes are taken
one at a time: a second one waits for the first rather than doubling the load on the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.registry import Collector

from api_cli.exporter.broker_reading import BrokerProbe, BrokerQuestion, BrokerReading
from api_cli.exporter.families import broker_families, database_families, health_families
from storage.errors import TrainqError
from storage.redaction import redact
from worker.queues import ALL_QUEUES

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from storage import Repository

logger = logging.getLogger(__name__)


class TrainqCollector(Collector):
    """Builds every trainq metric family at scrape time."""

    def __init__(self, repository: Repository, broker: BrokerProbe | None) -> None:
        """Read ``repository`` (read-only is enough) and ask ``broker`` (None: embedded)."""
        self._repository = repository
        self._broker = broker
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not read the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read both sources now and yield what they said."""
        with self._lock:
            families = self._read()
        yield from families

    def _read(self) -> list[Metric]:
        started = time.perf_counter()
        question, broker_problem = self._ask_broker()
        families: list[Metric] = []
        read_seconds: dict[str, float] = {}
        try:
            snapshot = self._repository.read_metrics_snapshot()
            families += database_families(snapshot, ALL_QUEUES)
            database_up = True
        except TrainqError as exc:
            logger.warning("trainq exporter: the database could not be read: %s", redact(str(exc)))
            database_up = False
        read_seconds["database"] = time.perf_counter() - started
        broker_up: bool | None = None
        if self._broker is not None:
            reading = self._broker_answer(question, broker_problem)
            broker_up = reading is not None
            if reading is not None:
                families += broker_families(reading, ALL_QUEUES)
            read_seconds["broker"] = time.perf_counter() - started
        families += health_families(
            database_up=database_up, broker_up=broker_up, read_seconds=read_seconds
        )
        return families

    def _ask_broker(self) -> tuple[BrokerQuestion | None, str | None]:
        if self._broker is None:
            return None, None
        try:
            return self._broker.ask(), None
        except TrainqError as exc:
            return None, str(exc)

    def _broker_answer(
        self, question: BrokerQuestion | None, problem: str | None
    ) -> BrokerReading | None:
        assert self._broker is not None
        try:
            if question is None:
                raise TrainqError(problem or "no question was asked")
            return question.answer(self._broker.deadline_s)
        except TrainqError as exc:
            logger.warning("trainq exporter: the broker could not be read: %s", redact(str(exc)))
            return None
