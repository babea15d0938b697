"""The Celery application: broker settings chosen for a queue that never loses a job.

Every value below has its reason in the comment beside it (``docs/architecture.md``, "Reliability",
says how they work together). The database is the system of record, so Celery keeps no results.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from kombu import Queue

from storage import Settings
from storage.redaction import RedactingFilter
from worker.queues import ALL_QUEUES, TRAIN_QUEUE

#: Longer than the longest run we accept: a shorter one would redeliver a running job in parallel.
VISIBILITY_TIMEOUT_S: Final = 7200
#: The soft limit lets a run record why it stopped; both stay below the visibility timeout.
TASK_SOFT_TIME_LIMIT_S: Final = 3300
TASK_TIME_LIMIT_S: Final = 3600
#: Off. SIGTERM and Ctrl-C start a warm shutdown, and a warm shutdown now lasts one chunk: the
#: job hands its run back at its next chunk boundary (``worker.cluster.shutdown``). Celery's soft
#: shutdown would instead *sleep* this long inside the signal handler, with the main loop
#: blocked, before cancelling the job; a cold shutdown (SIGQUIT, a second Ctrl-C) now cancels at
#: once and the main process releases the lease (``worker.cluster.job_request``).
SOFT_SHUTDOWN_TIMEOUT_S: Final = 0.0
#: How long the pool waits for a new job process to report up before killing it (Celery's 4 s by
#: default). A job process reports up after its warm-up (``worker.cluster.warm_up``): importing
#: TensorFlow and compiling take 3-8 s on two busy cores, more on a loaded machine, and a process
#: killed for being slow would be replaced by one that warms up again, for ever.
PROC_ALIVE_TIMEOUT_S: Final = 300.0

#: Publishing from the CLI fails fast; a run left QUEUED is published later by the reconciler.
PUBLISH_RETRY_POLICY: Final = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 2,
}

_TRANSPORT_OPTIONS: Final = {
    "visibility_timeout": VISIBILITY_TIMEOUT_S,
    "socket_timeout": 30,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 25,
}


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings for ``settings``'s broker."""
    return {
        "broker_url": kombu_broker_url(settings.broker_url),
        # Redis, hardened: an undecodable queue item is dropped instead of stopping the worker.
        "broker_transport": "worker.cluster.redis_transport:Transport",
        "broker_transport_options": dict(_TRANSPORT_OPTIONS),
        "broker_use_ssl": broker_ssl_options(settings.broker_url),
        "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # workers ride out Redis restarts
        # JSON only: a pickled message is refused before anything is decoded.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_ignore_result": True,  # the SQL database is the record
        "result_backend": None,
        # A message stays in Redis until its job is done, and a killed child requeues it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": 1,  # TensorFlow uses every core; scale with more workers
        # prefork, noticing dead processes sooner
        "worker_pool": "worker.cluster.job_pool:JobTaskPool",
        "task_soft_time_limit": TASK_SOFT_TIME_LIMIT_S,
        "task_time_limit": TASK_TIME_LIMIT_S,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_TIMEOUT_S,
        "worker_proc_alive_timeout": PROC_ALIVE_TIMEOUT_S,
        "task_queues": [Queue(name) for name in ALL_QUEUES],
        "task_default_queue": TRAIN_QUEUE,
        "task_create_missing_queues": False,
        "worker_send_task_events": True,  # flower and `trainq status` see task activity
        "task_send_sent_event": False,
        "imports": ["worker.cluster.tasks"],
    }


def broker_ssl_options(url: str | None) -> dict[str, Any] | None:
    """kombu's ``ssl`` options for a ``rediss://`` URL (None for plain ``redis://``): always
    ``CERT_REQUIRED``, plus the URL's own ``ssl_*`` parameters (its CA, a client certificate).

    kombu alone does not verify a bare ``rediss://`` (it falls back to ``CERT_NONE`` with a
    warning); ``Settings.from_env`` writes ``ssl_cert_reqs=required`` into such a URL, and this
    covers the settings built in code. Flower reads these options too (it refuses ``rediss://``
    without them).
    """
    if url is None or not url.startswith("rediss://"):
        return None
    from kombu.utils.url import parse_url

    options: dict[str, Any] = dict(parse_url(url).get("ssl") or {})
    options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def kombu_broker_url(url: str | None) -> str | None:
    """``url`` with ``?username=``/``?password=`` moved into the userinfo, where kombu reads them.

    redis-py accepts credentials in the query; kombu does not (it fails with a ``TypeError``),
    and it masks only a userinfo password in its banner and connection-error logs.
    """
    if url is None:
        return None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    credentials = {key.lower(): value for key, value in query if key.lower() in _CREDENTIAL_KEYS}
    if not credentials:
        return url
    user = credentials.get("username", unquote(parts.username or ""))
    password = credentials.get("password", unquote(parts.password or ""))
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}" if password else quote(user)
    host = parts.netloc.rpartition("@")[2]
    rest = urlencode([(key, value) for key, value in query if key.lower() not in _CREDENTIAL_KEYS])
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, rest, parts.fragment))


_CREDENTIAL_KEYS: Final = ("username", "password")


def install_log_redaction(logger: logging.Logger) -> None:
    """Redact every record ``logger``'s handlers emit: URLs in errors never show a password."""
    for handler in logger.handlers:
        if not any(isinstance(found, RedactingFilter) for found in handler.filters):
            handler.addFilter(RedactingFilter())


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger: logging.Logger, **_: Any) -> None:
    install_log_redaction(logger)


def create_app(settings: Settings) -> Celery:
    """Build the Celery app for ``settings`` (tasks are registered by ``worker.cluster.tasks``)."""
    app = Celery("trainq", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


#: The app that ``celery --app worker.cluster.celery_app:app`` (flower) and ``trainq worker`` load.
app: Final = create_app(Settings.from_env())
