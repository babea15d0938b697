"""Where a job runs is the swap of one object: a :class:`JobDispatcher`.

Two implementations, chosen once from the settings by :func:`dispatcher_for`:

- :class:`Dispatcher` (cluster) publishes job ids to the Redis broker; a message carries a job
  id, never data. Publishing is by task name, so nothing imports the task modules (and with them,
  eventually, TensorFlow). The reconciler publishes through it too.
- :class:`worker.inprocess.InProcessDispatcher` (embedded) runs the job in a thread of this
  process through the very function a worker calls (``worker.jobs.execute_job``).

Callers (the CLI's train, eval and resume, the Python API) never ask which one they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from storage import Settings
from storage.records import JobKind, JobRecord
from storage.redaction import redact
from worker.errors import BrokerUnavailableError
from worker.queues import ALL_QUEUES, EVAL_TASK, TRAIN_TASK

if TYPE_CHECKING:
    import redis
    from celery import Celery
    from kombu import Producer

    # Types only: importing the repository means SQLAlchemy (~0.3 s), and `trainq train` picks
    # its dispatcher before it opens the database, to start TensorFlow's import first.
    from storage import Repository

_TASK_FOR_KIND = {JobKind.TRAIN: TRAIN_TASK, JobKind.EVAL: EVAL_TASK}
_PING_TIMEOUT_S = 2.0


class JobHandle(Protocol):
    """A dispatched job, as far as the caller can follow it beyond the database."""

    @property
    def run_id(self) -> int:
        """The job's id (a row of ``runs``, or of ``evaluation_jobs``: see ``kind``)."""
        ...

    @property
    def kind(self) -> JobKind:
        """Which table ``run_id`` is an id of."""
        ...

    @property
    def in_this_process(self) -> bool:
        """True when the job executes in the caller's process (it ends when the process ends)."""
        ...

    def finished(self) -> bool:
        """True once the job is known to have stopped executing (only an in-process job knows)."""
        ...

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait until an in-process job stops executing; True if it has (always for the queue)."""
        ...

    def raise_failure(self) -> None:
        """Re-raise what crashed an in-process job outside of trainq's error handling, if any."""
        ...


class JobDispatcher(Protocol):
    """Starts stored QUEUED jobs: on the broker for workers, or in this process."""

    @property
    def in_this_process(self) -> bool:
        """True when dispatched jobs execute in this process (embedded mode)."""
        ...

    def check(self) -> None:
        """Fail fast, before anything is stored, when jobs cannot be dispatched now."""
        ...

    def dispatch(self, repository: Repository, run: JobRecord) -> JobHandle:
        """Start the stored QUEUED job ``run``."""
        ...

    def dispatch_many(self, repository: Repository, runs: Sequence[JobRecord]) -> list[JobHandle]:
        """Start several stored jobs (one broker connection for all of them)."""
        ...

    def close(self) -> None:
        """Release connections; an in-process dispatcher first lets its jobs finish."""
        ...


def dispatcher_for(settings: Settings) -> JobDispatcher:
    """The dispatcher the settings call for: the broker's if one is configured, else in-process."""
    if settings.embedded:
        from worker.inprocess import InProcessDispatcher

        return InProcessDispatcher(settings)
    return Dispatcher(settings)


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
        from worker.celery_app import create_app

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
                "check that Redis is running and TRAINQ_BROKER_URL (host, port, password) is right"
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

        from worker.celery_app import PUBLISH_RETRY_POLICY

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
        """Release broker connections."""
        if "_redis" in self.__dict__:
            self._redis.close()
