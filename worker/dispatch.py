"""Publishing jobs to the broker. A message carries a job id, never data.

The CLI and the reconciler both publish through :class:`Dispatcher`. Publishing is by task name,
so neither imports the task modules (and with them, eventually, TensorFlow).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from storage import Repository, Settings
from storage.records import JobKind, RunRecord
from storage.redaction import redact
from worker.errors import BrokerUnavailableError
from worker.queues import ALL_QUEUES, EVAL_TASK, TRAIN_TASK

if TYPE_CHECKING:
    import redis
    from celery import Celery

_TASK_FOR_KIND = {JobKind.TRAIN: TRAIN_TASK, JobKind.EVAL: EVAL_TASK}
_PING_TIMEOUT_S = 2.0


class Dispatcher:
    """Publishes job ids to the Redis broker named by ``settings.broker_url``."""

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

    def publish(self, repository: Repository, run: RunRecord) -> None:
        """Publish ``run``'s id on its queue and record when.

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
            )
        except OperationalError as exc:
            raise BrokerUnavailableError(
                f"run {run.id} is saved as QUEUED but could not be published ({redact(str(exc))}); "
                "a worker's reconciler will publish it once the broker is back"
            ) from None
        repository.mark_published(run.id)

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
