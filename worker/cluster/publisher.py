"""The broker's side of dispatching: one publisher per process, and what follows a job.

:class:`Dispatcher` publishes job ids to the Redis broker named by ``TRAINQ_BROKER_URL``; a
message carries a job id, never data. Publishing is by task name, so nothing imports the task
modules (and with them, eventually, TensorFlow).

Every caller in a process (the CLI, the Python API, the dashboard's queue view, the reconciler,
the tasks that hand a run back, the trial that frees a sweep's slot) shares one publisher per
broker URL through :func:`publisher_for`: one Celery app, one connection pool. A forked child
starts with none (its parent's sockets must not cross ``fork()``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from storage import Settings
from storage.errors import TrainqError
from storage.records import JobKind, JobRecord
from storage.redaction import redact
from worker.dispatch import JobDispatcher, JobHandle
from worker.errors import BrokerUnavailableError
from worker.queues import ALL_QUEUES, EVAL_TASK, TRAIN_TASK
from worker.sweeps import publish_new_trials

if TYPE_CHECKING:
    import redis
    from celery import Celery
    from kombu import Producer

    from storage import Repository

logger = logging.getLogger(__name__)

_TASK_FOR_KIND = {JobKind.TRAIN: TRAIN_TASK, JobKind.EVAL: EVAL_TASK}
_PING_TIMEOUT_S = 2.0


def dispatcher_for(settings: Settings) -> JobDispatcher:
    """The dispatcher the settings call for: the broker's if one is configured, else in-process."""
    if settings.embedded:
        from worker.inprocess import InProcessDispatcher

        return InProcessDispatcher(settings)
    return publisher_for(settings)


def publisher_for(settings: Settings) -> Dispatcher:
    """This process's publisher for ``settings``' broker, built on first use.

    Raises:
        BrokerUnavailableError: no broker is configured.
    """
    key = (os.getpid(), settings)
    with _PUBLISHERS_LOCK:
        publisher = _PUBLISHERS.get(key)
        if publisher is None:
            publisher = _PUBLISHERS[key] = Dispatcher(settings)
        return publisher


_PUBLISHERS: dict[tuple[int, Settings], Dispatcher] = {}
_PUBLISHERS_LOCK = threading.Lock()


def _forget_publishers_in_child() -> None:
    # A forked job process must open its own connections: drop (never close) the parent's.
    _PUBLISHERS.clear()


os.register_at_fork(after_in_child=_forget_publishers_in_child)


def trial_ended(repository: Repository, settings: Settings, sweep_id: int) -> None:
    """A trial's job is over (whatever the outcome): publish the trial that took its slot.

    The next trial was created in the transaction that ended this one; only publishing is left
    (embedded, nothing: the sweep runner takes QUEUED trials itself). Never raises: the
    reconciler publishes for every running sweep, so a failure here only delays the next trial
    by one reconcile period.
    """
    if settings.broker_url is None:
        return
    try:
        publish_new_trials(repository, sweep_id, publisher_for(settings))
    except TrainqError as exc:
        logger.warning("sweep %s: could not start the next trial now: %s", sweep_id, exc)


@dataclass(frozen=True)
class PublishedJob:
    """A job handed to the broker: from here on only the database knows how it goes."""

    run_id: int
    kind: JobKind = JobKind.TRAIN
    in_this_process: bool = False

    def finished(self) -> bool:
        """Never known from here: the database says when the job is terminal."""
        return False

    def join(self, timeout_s: float | None = None) -> bool:
        """Nothing runs here to wait for."""
        return True

    def raise_failure(self) -> None:
        """A worker records its failures on the run itself."""


def _what_to_check(url: str, exc: Exception) -> str:
    """The advice for a broker that does not answer, from what went wrong."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            "the broker's certificate is not signed by the CA trainq was given (TRAINQ_CA_FILE, "
            "or ssl_ca_certs in TRAINQ_BROKER_URL), or its names do not include the URL's host"
        )
    if "SSL" in text and url.startswith("rediss://"):
        return (
            "the broker did not answer over TLS: use redis:// if its port speaks plain text, and "
            "check TRAINQ_BROKER_URL's host and port"
        )
    if url.startswith("redis://") and ("reset by peer" in text or "closed by server" in text):
        return (
            "the broker closed the connection: if its port speaks TLS, use rediss://… (with "
            "TRAINQ_CA_FILE); else check TRAINQ_BROKER_URL (host, port, password)"
        )
    return "check that Redis is running and TRAINQ_BROKER_URL (host, port, password) is right"


class Dispatcher:
    """Publishes job ids to the Redis broker named by ``settings.broker_url`` (cluster mode)."""

    in_this_process = False

    def __init__(self, settings: Settings) -> None:
        if settings.broker_url is None:
            raise BrokerUnavailableError(
                "no broker configured: set TRAINQ_BROKER_URL=redis://… to queue jobs for workers"
            )
        self._broker_url = settings.broker_url
        self._settings = settings

    @cached_property
    def _app(self) -> Celery:
        from worker.cluster.celery_app import create_app

        return create_app(self._settings)

    @cached_property
    def _redis(self) -> redis.Redis[bytes]:
        import redis

        return redis.Redis.from_url(
            self._broker_url,
            socket_connect_timeout=_PING_TIMEOUT_S,
            socket_timeout=_PING_TIMEOUT_S,
        )

    def ping(self) -> None:
        """Check that the broker answers.

        Raises:
            BrokerUnavailableError: naming the URL (password hidden) and what to check.
        """
        import redis

        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise BrokerUnavailableError(
                f"the broker at {redact(self._broker_url)} does not answer ({redact(str(exc))}); "
                f"{_what_to_check(self._broker_url, exc)}"
            ) from None

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each trainq queue (not counting those a worker has reserved)."""
        import redis

        try:
            return {queue: int(self._redis.llen(queue)) for queue in ALL_QUEUES}
        except redis.RedisError as exc:
            raise BrokerUnavailableError(f"cannot read queue depths: {redact(str(exc))}") from None

    def publish(
        self, repository: Repository, run: JobRecord, *, producer: Producer | None = None
    ) -> None:
        """Publish ``run``'s id on its queue and record when.

        Args:
            repository: where ``published_at`` is recorded.
            run: the stored QUEUED job.
            producer: a kombu producer to reuse (``None``: one from the app's pool).

        Raises:
            BrokerUnavailableError: the broker could not be reached after a few quick retries;
                the run stays QUEUED and a worker's reconciler publishes it later.
        """
        from kombu.exceptions import OperationalError

        from worker.cluster.celery_app import PUBLISH_RETRY_POLICY

        try:
            self._app.send_task(
                _TASK_FOR_KIND[run.kind],
                args=[run.id],
                queue=run.queue,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
                producer=producer,
            )
        except OperationalError as exc:
            raise BrokerUnavailableError(
                f"{run.label} is saved as QUEUED but could not be published "
                f"({redact(str(exc))}); a worker's reconciler will publish it once the broker "
                "is back"
            ) from None
        repository.mark_published(run.id, kind=run.kind)

    def check(self) -> None:
        """The broker must answer before a job is stored (see :meth:`ping`)."""
        self.ping()

    def dispatch(self, repository: Repository, run: JobRecord) -> JobHandle:
        """Publish ``run`` (see :meth:`publish`) and return its handle."""
        self.publish(repository, run)
        return PublishedJob(run.id, run.kind)

    def dispatch_many(self, repository: Repository, runs: Sequence[JobRecord]) -> list[JobHandle]:
        """Publish several runs through one producer, so one broker connection serves them all."""
        handles: list[JobHandle] = []
        with self._app.producer_or_acquire() as producer:
            for run in runs:
                self.publish(repository, run, producer=producer)
                handles.append(PublishedJob(run.id, run.kind))
        return handles

    def workers_online(self, timeout_s: float = 1.0) -> dict[str, object]:
        """Ping every worker; returns ``{worker name: reply}`` for those that answered in time."""
        replies = self._app.control.ping(timeout=timeout_s)
        online: dict[str, object] = {}
        for reply in replies or []:
            online.update(reply)
        return online

    def close(self) -> None:
        """Release broker connections; the publisher stays usable (it reconnects when next used)."""
        connection = self.__dict__.pop("_redis", None)
        if connection is not None:
            connection.close()
