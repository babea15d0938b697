"""trainq's settings: one frozen object, built once from ``TRAINQ_*`` environment variables.

This is the only module that reads ``os.environ``. It lives in ``storage`` because that is the
bottom layer: the worker and the CLI import it from here without breaking the one-way import rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from storage.errors import ConfigurationError
from storage.redaction import excerpt, redact, remember_secrets
from storage.tls import check_ca_file, secured_urls
from storage.validation import MAX_ATTEMPTS_LIMIT

ENV_PREFIX = "TRAINQ_"
#: 20 GiB: ten versions of the largest size a version may have, or 400 Fashion-MNIST-sized ones.
DEFAULT_DATA_CACHE_MAX_BYTES: Final = 20 * 1024**3
#: Device memory one pack of sweep trials may take (``TRAINQ_PACK_MEMORY_BYTES``): 512 MiB.
DEFAULT_PACK_MEMORY_BYTES: Final = 512 * 1024**2
#: A URL file (``TRAINQ_*_URL_FILE``) holds one URL; more than this is surely the wrong file.
MAX_URL_FILE_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration. Build it with :meth:`from_env`; pass it down explicitly."""

    #: Directory for the embedded SQLite database and local state (``TRAINQ_HOME``).
    home_dir: Path
    #: SQLAlchemy URL of the system of record (``TRAINQ_DATABASE_URL`` or the file
    #: ``TRAINQ_DATABASE_URL_FILE`` names); SQLite under home by default.
    database_url: str
    #: Celery broker URL (``TRAINQ_BROKER_URL`` or the file ``TRAINQ_BROKER_URL_FILE`` names);
    #: ``None`` selects the embedded mode. A ``rediss://`` URL always verifies the broker
    #: (``storage.tls``).
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
    #: Where a worker keeps the dataset versions it fetched (``TRAINQ_DATA_CACHE``); None means
    #: ``data-cache`` under :attr:`home_dir` (see :attr:`data_cache_path`).
    data_cache_dir: Path | None = None
    #: The most bytes of dataset versions that cache keeps (``TRAINQ_DATA_CACHE_MAX_BYTES``);
    #: the least recently used go first.
    data_cache_max_bytes: int = DEFAULT_DATA_CACHE_MAX_BYTES
    #: The most device memory one pack of sweep trials may take (``TRAINQ_PACK_MEMORY_BYTES``):
    #: a wider pack is narrowed when the sweep is submitted (``worker.pack_plan``).
    pack_memory_bytes: int = DEFAULT_PACK_MEMORY_BYTES
    #: The CA certificate that signed the broker's and the database's certificates
    #: (``TRAINQ_CA_FILE``), already written into both URLs (``storage.tls``); None: the URLs say.
    ca_file: Path | None = None

    @property
    def data_cache_path(self) -> Path:
        """The data cache's directory: ``TRAINQ_DATA_CACHE``, else ``$TRAINQ_HOME/data-cache``."""
        return self.data_cache_dir or self.home_dir / "data-cache"

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: jobs run inside the CLI process."""
        return self.broker_url is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (or ``environ`` for tests).

        Raises:
            ConfigurationError: a variable is set to a value that cannot be used, or outside its
                range (:data:`RANGES`); the message names the variable, the value (secrets
                masked) and what is accepted.
        """
        env = os.environ if environ is None else environ
        home = Path(env.get(f"{ENV_PREFIX}HOME") or Path.home() / ".trainq").expanduser()
        database_url, _ = _url_setting(env, "DATABASE_URL")
        database_url = database_url or f"sqlite:///{home / 'trainq.db'}"
        broker_url, broker_variable = _url_setting(env, "BROKER_URL")
        # Before any check: a parser's complaint about a URL may quote a piece of its password.
        for url in (database_url, broker_url):
            if url is not None:
                remember_secrets(url)
        if broker_url is not None:
            _check_broker_url(broker_url, broker_variable)
        ca_file_text = env.get(f"{ENV_PREFIX}CA_FILE")
        ca_file = check_ca_file(Path(ca_file_text)) if ca_file_text else None
        broker_url, database_url = secured_urls(
            broker_url, database_url, ca_file, broker_variable=broker_variable
        )
        data_dir_text = env.get(f"{ENV_PREFIX}DATA_DIR")
        if data_dir_text and not Path(data_dir_text).expanduser().is_dir():
            # An explicit setting that is wrong is an error, never a fallback to another copy.
            raise ConfigurationError(
                f"TRAINQ_DATA_DIR={excerpt(data_dir_text)} is not a directory: point it at the "
                "folder that holds the Fashion-MNIST IDX files, or unset it to use the system copy "
                "(apt-get install dataset-fashion-mnist)."
            )
        worker_device = env.get(f"{ENV_PREFIX}WORKER_DEVICE") or "auto"
        if worker_device not in ("auto", "cpu", "gpu"):
            raise ConfigurationError(
                f"TRAINQ_WORKER_DEVICE={excerpt(redact(worker_device))} must be one of auto, cpu, "
                "gpu."
            )
        data_cache_text = env.get(f"{ENV_PREFIX}DATA_CACHE")
        data_cache = Path(data_cache_text).expanduser() if data_cache_text else None
        if data_cache is not None and data_cache.exists() and not data_cache.is_dir():
            # Created on first use when missing; a file in its place would fail every job.
            raise ConfigurationError(
                f"TRAINQ_DATA_CACHE={excerpt(redact(data_cache_text or ''))} is not a directory: "
                "point it at a directory the worker may write (created when missing), or unset "
                "it to use $TRAINQ_HOME/data-cache."
            )
        return cls(
            home_dir=home,
            database_url=database_url,
            broker_url=broker_url,
            data_dir=Path(data_dir_text).expanduser() if data_dir_text else None,
            lease_ttl_s=_bounded_number(env, "LEASE_TTL_S", cls.lease_ttl_s),
            max_attempts=int(_bounded_number(env, "MAX_ATTEMPTS", cls.max_attempts)),
            redispatch_after_s=_bounded_number(env, "REDISPATCH_AFTER_S", cls.redispatch_after_s),
            reconcile_every_s=_bounded_number(env, "RECONCILE_EVERY_S", cls.reconcile_every_s),
            worker_device=worker_device,
            data_cache_dir=data_cache,
            data_cache_max_bytes=int(
                _bounded_number(env, "DATA_CACHE_MAX_BYTES", cls.data_cache_max_bytes)
            ),
            pack_memory_bytes=int(_bounded_number(env, "PACK_MEMORY_BYTES", cls.pack_memory_bytes)),
            ca_file=ca_file,
        )


@dataclass(frozen=True)
class SettingRange:
    """The values a numeric ``TRAINQ_*`` setting accepts, and why."""

    #: Smallest accepted value.
    low: float
    #: Largest accepted value.
    high: float
    #: Whole numbers only.
    integer: bool
    #: Why these bounds (printed with the error, so an operator knows what the limit protects).
    reason: str


#: Each numeric setting's range, by variable name without the prefix.
RANGES: Final[dict[str, SettingRange]] = {
    "LEASE_TTL_S": SettingRange(
        1.0,
        3600.0,
        integer=False,
        reason="the lease is renewed every third of it, so a shorter one expires between "
        "renewals and a run bounces between workers; a longer one leaves a dead worker's run "
        "waiting that long",
    ),
    "MAX_ATTEMPTS": SettingRange(
        1,
        MAX_ATTEMPTS_LIMIT,
        integer=True,
        reason="a run needs one attempt; a run that keeps killing its worker should fail, "
        "not bounce for days",
    ),
    "RECONCILE_EVERY_S": SettingRange(
        0.5,
        3600.0,
        integer=False,
        reason="more often keeps a core busy with database queries; less often leaves lost "
        "runs waiting over an hour",
    ),
    "REDISPATCH_AFTER_S": SettingRange(
        1.0,
        86400.0,
        integer=False,
        reason="sooner would publish copies of messages still on their way to a worker; later "
        "than a day leaves a lost message unreplaced too long",
    ),
    "PACK_MEMORY_BYTES": SettingRange(
        16 * 1024**2,
        1024**4,
        integer=True,
        reason="a count of bytes (1 GiB is 1073741824); a pack of 784 x 10 trials takes about "
        "350 KiB per trial, and more than a TiB is surely a typo",
    ),
    "DATA_CACHE_MAX_BYTES": SettingRange(
        1024**2,
        1024**5,
        integer=True,
        reason="a count of bytes (20 GiB is 21474836480); a version larger than the cache is "
        "fetched from the database again by every job that needs it, and more than a PiB is "
        "surely a typo",
    ),
}


def _bounded_number(env: Mapping[str, str], suffix: str, default: float) -> float:
    name = f"{ENV_PREFIX}{suffix}"
    text = env.get(name)
    if text is None or text.strip() == "":
        return float(default)
    bounds = RANGES[suffix]
    try:
        value = float(int(text.strip(), 10)) if bounds.integer else float(text)
    except ValueError:
        value = float("nan")
    if not bounds.low <= value <= bounds.high:  # NaN fails too
        kind = "a whole number" if bounds.integer else "a number"
        raise ConfigurationError(
            f"{name}={excerpt(redact(text))} must be {kind} from {_shown(bounds.low, bounds)} to "
            f"{_shown(bounds.high, bounds)} (default {_shown(default, bounds)}): {bounds.reason}."
        )
    return value


def _shown(value: float, bounds: SettingRange) -> str:
    # Whole numbers in full: "1e+06" would read as a value to type, and a rounded one.
    return str(int(value)) if bounds.integer else f"{value:g}"


def _url_setting(env: Mapping[str, str], suffix: str) -> tuple[str | None, str]:
    """``TRAINQ_<suffix>``, or the content of the file ``TRAINQ_<suffix>_FILE`` names (a Docker
    or Kubernetes secret), and the variable to name in errors about it.

    Raises:
        ConfigurationError: both are set, or the file is missing, unreadable, too large, empty or
            holds more than one line; never quoting the file's content.
    """
    name, file_name = f"{ENV_PREFIX}{suffix}", f"{ENV_PREFIX}{suffix}_FILE"
    value, path_text = env.get(name) or None, env.get(file_name)
    if not path_text:
        return value, name
    shown = f"{file_name}={excerpt(redact(path_text))}"
    if value is not None:
        raise ConfigurationError(
            f"both {name} and {file_name} are set: keep one (the file is for secrets mounted by "
            "Docker or Kubernetes)."
        )
    try:
        with Path(path_text).expanduser().open("rb") as file:
            data = file.read(MAX_URL_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"{shown} cannot be read ({exc.strerror or type(exc).__name__}): point it at the "
            f"file that holds the URL, or set {name} instead."
        ) from None
    if len(data) > MAX_URL_FILE_BYTES:
        raise ConfigurationError(
            f"{shown} is larger than {MAX_URL_FILE_BYTES // 1024} KiB: the file must hold only "
            "the URL."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{shown} is not UTF-8 text: it must hold only the URL.") from None
    # One trailing newline is what `echo URL > file` and most editors write; nothing else is cut.
    text = text.removesuffix("\n").removesuffix("\r")
    remember_secrets(text)  # before any message that could quote it
    if not text.strip():
        raise ConfigurationError(
            f"{shown} is empty: write the URL into it (printf '%s' \"$URL\" > FILE)."
        )
    if "\n" in text:
        raise ConfigurationError(
            f"{shown} holds more than one line: the file must hold only the URL."
        )
    return text, f"{name} (from {file_name})"


def _check_broker_url(url: str, variable: str = f"{ENV_PREFIX}BROKER_URL") -> None:
    # Checked here, at start, so that a typo is exit 78 naming the variable rather than an
    # outage or an internal error when the first connection is made.
    problem = None
    if not url.startswith(("redis://", "rediss://")):
        problem = "is not a Redis URL"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError:
            # Never the parser's own words: they quote what it took for a port, which is a piece
            # of the password when the password holds a character that ends the host part.
            problem = (
                "cannot be parsed: its port is not a number, or its password holds one of # ? / "
                "[ ] which must be percent-encoded (# is %23)"
            )
    if problem is not None:
        raise ConfigurationError(
            f"{variable}={excerpt(redact(url))} {problem}; use "
            "redis://[:password@]host:6379/0 (rediss:// for TLS) or unset it to run jobs "
            "in-process (embedded mode)."
        )
