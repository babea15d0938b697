"""A heartbeat that keeps a claimed run's lease alive for as long as its job process lives.

Chunks renew the lease too, but a job can go longer than a lease without finishing a chunk:
importing TensorFlow, loading data and compiling happen before the first one. The heartbeat
is what makes the lease mean "the process holding it is alive". When the process dies, the
heartbeat dies with it and the lease expires.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from storage import Repository
from storage.errors import StaleAttemptError, TrainqError
from storage.records import JobKind

logger = logging.getLogger(__name__)


class LeaseHeartbeat:
    """Renews a run's lease every third of its TTL from a daemon thread, while in a ``with``."""

    def __init__(
        self,
        repository: Repository,
        run_id: int,
        attempt: int,
        lease_ttl_s: float,
        *,
        kind: JobKind = JobKind.TRAIN,
    ) -> None:
        self._kind = kind
        self._repository = repository
        self._run_id = run_id
        self._attempt = attempt
        self._lease_ttl_s = lease_ttl_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id}", daemon=True)
        #: Set when the database says the run should stop: cancel requested, or lease lost.
        self.stop_requested = threading.Event()

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stopped.wait(self._lease_ttl_s / 3):
            try:
                ack = self._repository.renew_lease(
                    self._run_id, self._attempt, self._lease_ttl_s, kind=self._kind
                )
            except StaleAttemptError:
                logger.warning(
                    "run %s: lease no longer held (run finished or taken over)", self._run_id
                )
                self.stop_requested.set()
                return
            except TrainqError as exc:  # a database blip: the next beat (or chunk) tries again
                logger.warning("run %s: lease renewal failed: %s", self._run_id, exc)
                continue
            if ack.cancel_requested:
                self.stop_requested.set()
