"""A heartbeat that keeps a claimed run's lease alive for as long as its job process lives.

Chunks renew the lease too, but a job can go longer than a lease without finishing a chunk:
importing TensorFlow, loading data and compiling happen before the first one. The heartbeat
is what makes the lease mean "the process holding it is alive". When the process dies, the
heartbeat dies with it and the lease expires.

A database outage is not the run's fault. While the database is away the job cannot ask it how
long its lease lasts, so it counts here, on a monotonic clock, from the last renewal that
succeeded: every write of the attempt (:meth:`LeaseHeartbeat.write`) waits the outage out, with
backoff, for as long as the lease lasts. Past that another worker may take the run over, so the
job stops training (``lease_lost``) and hands the run back once the database returns (see
``worker.outage``); fencing rejects any write of ours that comes after a takeover.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from storage import Repository
from storage.database import retrying_until
from storage.errors import DatabaseUnavailableError, StaleAttemptError, StorageError, TrainqError
from storage.records import ChunkAck, JobKind

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How log lines name a job of each kind ("run 3: …", "eval 5: …").
JOB_LOG_NAME = {JobKind.TRAIN: "run", JobKind.EVAL: "eval"}


class LeaseLostInOutageError(TrainqError):
    """Raised when the lease ran out while the database was unreachable; nothing was written."""


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
        self._lock = threading.Lock()
        # Built right after the claim returned: later than the claim's own clock by the claim's
        # round trip, which only lengthens our wait; fencing keeps a late write harmless.
        self._renewed_at = time.monotonic()
        self._down_since: float | None = None
        #: Set when the database says the run should stop: cancel requested, or lease lost.
        self.stop_requested = threading.Event()
        #: Set when the lease ran out while the database was unreachable: stop training, and
        #: hand the run back when the database returns.
        self.lease_lost = threading.Event()

    @property
    def job_name(self) -> str:
        """How log lines name the job: ``run 3``, ``eval 5``."""
        return f"{JOB_LOG_NAME[self._kind]} {self._run_id}"

    @property
    def lease_ttl_s(self) -> float:
        """The lease's time to live, in seconds."""
        return self._lease_ttl_s

    def lease_expires_at(self) -> float:
        """When the lease runs out (``time.monotonic()``) unless renewed before."""
        return self._renewed_at + self._lease_ttl_s

    def outage_started_at(self) -> float | None:
        """When the outage in progress began (``time.monotonic()``), or None when there is none."""
        return self._down_since

    def write(self, work: Callable[[], T]) -> T:
        """Run ``work``, a fenced write of this attempt that renews its lease (or reads it needs),
        waiting out a database outage for as long as the lease lasts.

        Raises:
            LeaseLostInOutageError: the lease ran out with the database still unreachable
                (``lease_lost`` is set; nothing of ``work`` was written).
        """
        return self._write(work, self.lease_expires_at)

    def _write(self, work: Callable[[], T], deadline: Callable[[], float]) -> T:
        asked_at = time.monotonic()
        try:
            with retrying_until(deadline, on_retry=self._unreachable):
                result = work()
        except DatabaseUnavailableError as exc:
            if time.monotonic() < self.lease_expires_at():
                raise  # not retried (not idempotent): not an outage we may wait out
            self.lease_lost.set()
            raise LeaseLostInOutageError(
                f"{self.job_name}: the database was unreachable for longer than the "
                f"{self._lease_ttl_s:g} s lease"
            ) from exc
        self._renewed(asked_at)
        return result

    def _unreachable(self, _: StorageError) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                logger.info(
                    "%s: database unreachable; waiting for it within the lease (%.1f s left)",
                    self.job_name,
                    self.lease_expires_at() - self._down_since,
                )

    def _renewed(self, asked_at: float) -> None:
        """A write that renewed the lease committed; it was asked at ``asked_at``."""
        with self._lock:
            # The database set the new expiry from its clock when the write began: count from then.
            self._renewed_at = max(self._renewed_at, asked_at)
            down_since, self._down_since = self._down_since, None
        if down_since is not None:
            logger.warning(
                "%s: the database was unreachable for %.1f s; waited it out within the %g s lease",
                self.job_name,
                time.monotonic() - down_since,
                self._lease_ttl_s,
            )

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

    def _renew(self) -> ChunkAck:
        return self._repository.renew_lease(
            self._run_id, self._attempt, self._lease_ttl_s, kind=self._kind
        )

    def _beat_deadline(self) -> float:
        # A stopping heartbeat does not keep its job waiting: the job's own writes wait instead.
        return 0.0 if self._stopped.is_set() else self.lease_expires_at()

    def _beat(self) -> None:
        while not self._stopped.wait(self._lease_ttl_s / 3):
            try:
                ack = self._write(self._renew, self._beat_deadline)
            except StaleAttemptError:
                logger.warning(
                    "%s: lease no longer held (run finished or taken over)", self.job_name
                )
                self.stop_requested.set()
                return
            except LeaseLostInOutageError:
                return  # the job stops at its next chunk and hands the run back later
            except TrainqError as exc:  # a database blip: the next beat (or chunk) tries again
                if self._stopped.is_set():
                    return
                logger.warning("%s: lease renewal failed: %s", self.job_name, exc)
                continue
            if ack.cancel_requested:
                self.stop_requested.set()
