"""trainq's settings: one frozen object, built once from ``TRAINQ_*`` environment variables.

This is the only module that reads ``os.environ``. It lives in ``storage`` because that is the
bottom layer: the worker and the CLI import it from here without breaking the one-way import rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from storage.errors import ConfigurationError

ENV_PREFIX = "TRAINQ_"


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration. Build it with :meth:`from_env`; pass it down explicitly."""

    #: Directory for the embedded SQLite database and local state (``TRAINQ_HOME``).
    home_dir: Path
    #: SQLAlchemy URL of the system of record (``TRAINQ_DATABASE_URL``); SQLite under home by
    #: default.
    database_url: str
    #: Celery broker URL (``TRAINQ_BROKER_URL``); ``None`` selects the embedded mode.
    broker_url: str | None
    #: Explicit Fashion-MNIST directory (``TRAINQ_DATA_DIR``); ``None`` searches the usual places.
    data_dir: Path | None
    #: How long a claimed run stays owned without a lease renewal (``TRAINQ_LEASE_TTL_S``).
    lease_ttl_s: float = 30.0
    #: Attempts before a run that keeps losing its worker is FAILED (``TRAINQ_MAX_ATTEMPTS``).
    max_attempts: int = 3
    #: A QUEUED run not picked up for this long is published again (``TRAINQ_REDISPATCH_AFTER_S``).
    redispatch_after_s: float = 120.0
    #: How often a worker's reconciler looks for lost runs (``TRAINQ_RECONCILE_EVERY_S``).
    reconcile_every_s: float = 30.0
    #: Device a worker uses for jobs whose config says ``auto`` (``TRAINQ_WORKER_DEVICE``).
    worker_device: str = "auto"

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: jobs run inside the CLI process."""
        return self.broker_url is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (or ``environ`` for tests).

        Raises:
            ConfigurationError: a variable is set to a value that cannot be used; the message
                names the variable and the value.
        """
        env = os.environ if environ is None else environ
        home = Path(env.get(f"{ENV_PREFIX}HOME") or Path.home() / ".trainq").expanduser()
        database_url = env.get(f"{ENV_PREFIX}DATABASE_URL") or f"sqlite:///{home / 'trainq.db'}"
        broker_url = env.get(f"{ENV_PREFIX}BROKER_URL") or None
        if broker_url is not None and not broker_url.startswith(("redis://", "rediss://")):
            raise ConfigurationError(
                f"TRAINQ_BROKER_URL={broker_url!r} is not a Redis URL; use "
                "redis://[:password@]host:6379/0 or unset it to run jobs in-process "
                "(embedded mode)."
            )
        data_dir_text = env.get(f"{ENV_PREFIX}DATA_DIR")
        worker_device = env.get(f"{ENV_PREFIX}WORKER_DEVICE") or "auto"
        if worker_device not in ("auto", "cpu", "gpu"):
            raise ConfigurationError(
                f"TRAINQ_WORKER_DEVICE={worker_device!r} must be one of auto, cpu, gpu."
            )
        return cls(
            home_dir=home,
            database_url=database_url,
            broker_url=broker_url,
            data_dir=Path(data_dir_text).expanduser() if data_dir_text else None,
            lease_ttl_s=_positive_float(env, "LEASE_TTL_S", cls.lease_ttl_s),
            max_attempts=int(_positive_float(env, "MAX_ATTEMPTS", cls.max_attempts)),
            redispatch_after_s=_positive_float(env, "REDISPATCH_AFTER_S", cls.redispatch_after_s),
            reconcile_every_s=_positive_float(env, "RECONCILE_EVERY_S", cls.reconcile_every_s),
            worker_device=worker_device,
        )


def _positive_float(env: Mapping[str, str], suffix: str, default: float) -> float:
    name = f"{ENV_PREFIX}{suffix}"
    text = env.get(name)
    if text is None or text == "":
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(
            f"{name}={text!r} must be a positive finite number (default {default})."
        )
    return value
