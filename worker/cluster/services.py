"""The worker's storage handles, built once per process from ``TRAINQ_*`` settings.

Fork safety lives in the storage layer: its engines drop pooled connections in a forked child
(``os.register_at_fork`` in ``storage/engine.py``), so a Celery job process that inherits this
cache from the parent still opens its own connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from storage import Database, Repository, Settings


@dataclass(frozen=True)
class Services:
    """What a job needs from the environment: settings and a repository."""

    settings: Settings
    repository: Repository


@cache
def services() -> Services:
    """This process's services, built on first use."""
    settings = Settings.from_env()
    return Services(settings, Repository(Database(settings.database_url)))
