"""Per-process storage handles for the worker.

Engines and their pooled sockets must not cross ``fork()``: each process builds its own the first
time it needs one, keyed by pid, so a Celery child never reuses the parent's connections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from storage import Database, Repository, Settings


@dataclass(frozen=True)
class Services:
    """What a job needs from the environment: settings and a repository on this process's engine."""

    settings: Settings
    repository: Repository


_by_pid: dict[int, Services] = {}


def services() -> Services:
    """This process's services, built on first use from ``TRAINQ_*`` settings."""
    pid = os.getpid()
    found = _by_pid.get(pid)
    if found is None:
        _by_pid.clear()  # entries inherited from a parent process are never used here
        settings = Settings.from_env()
        database = Database(settings.database_url)
        found = Services(settings, Repository(database))
        _by_pid[pid] = found
    return found
