"""Engines: one per database URL per process, configured for SQLite or PostgreSQL.

SQLite gets WAL, a 30 s busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for write transactions
(SQLAlchemy emits BEGIN itself; pysqlite's own transaction handling is switched off). PostgreSQL
goes through psycopg 3 with pre-ping, a 5 s connect timeout, TCP keepalives and server-side
timeouts that bound locks held by paused ("zombie") workers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from storage.connect_options import (
    POSTGRES_CONNECT_ARGS,
    SQLITE_BUSY_TIMEOUT_MS,
    postgres_connect_args,
)
from storage.errors import ConfigurationError, DatabaseCorruptError, DatabaseUnavailableError
from storage.redaction import redact

#: Execution option that marks a transaction read-only; SQLite then begins it DEFERRED.
READONLY_OPTION = "trainq_readonly"

_ENGINES: dict[str, Engine] = {}


def _strict_json(value: Any) -> str:
    # A backstop under the repository's own checks: JSON has no NaN/Infinity; PostgreSQL rejects
    # them and SQLite would store text no other JSON reader accepts.
    return json.dumps(value, allow_nan=False)


_ENGINES_LOCK = threading.Lock()


def normalize_url(url: str) -> URL:
    """Parse a database URL and pick the driver trainq supports for it.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3).

    Raises:
        ConfigurationError: the URL cannot be parsed or names an unsupported database.
    """
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a port that is not a number fails here, not at connect)
    except (ArgumentError, ValueError) as exc:
        # ValueError: SQLAlchemy parses the port with int(), so a typo (":54x2") lands here.
        problem = (
            "has a port that is not a number" if isinstance(exc, ValueError) else "cannot be parsed"
        )
        raise ConfigurationError(
            f"TRAINQ_DATABASE_URL={redact(url)!r} {problem}: it is not a database URL; use "
            "postgresql+psycopg://user:password@host:5432/dbname or sqlite:////path/to/trainq.db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite")
    raise ConfigurationError(
        f"TRAINQ_DATABASE_URL uses {parsed.drivername!r}; trainq supports postgresql+psycopg:// "
        "and sqlite:// only"
    )


def display_url(url: URL) -> str:
    """The URL as it may appear in messages and logs: every password form hidden."""
    # hide_password covers user:password@ only; a ?password= query needs redact().
    return redact(url.render_as_string(hide_password=True))


def get_engine(url: URL, *, read_only: bool = False) -> Engine:
    """Return this process's engine for ``url``, creating it on first use.

    Args:
        url: the database.
        read_only: an engine whose every transaction refuses writes (a separate engine from the
            read-write one of the same URL).
    """
    key = url.render_as_string(hide_password=False) + (" read-only" if read_only else "")
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _create_read_only_engine(url) if read_only else _create_engine(url)
            _ENGINES[key] = engine
        return engine


def dispose_engines(*, close: bool = False) -> None:
    """Drop the pooled connections of every engine of this process.

    Args:
        close: ``False`` after ``fork()`` (Celery ``worker_process_init``): the child forgets the
            parent's sockets without touching them. ``True`` at shutdown: close them.
    """
    # No lock: this also runs in a freshly forked child, where another thread of the parent may
    # have held the lock at fork time and would never release it.
    for engine in list(_ENGINES.values()):
        engine.dispose(close=close)


def _dispose_after_fork() -> None:
    dispose_engines(close=False)


# Pooled sockets must never cross fork(): a Celery job process (forked from the worker's main
# process, which has used the database) gets empty pools and opens its own connections.
os.register_at_fork(after_in_child=_dispose_after_fork)


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args=POSTGRES_CONNECT_ARGS,
        json_serializer=_strict_json,
    )


def _create_read_only_engine(url: URL) -> Engine:
    """An engine for readers that must never write, even by mistake (the web dashboard)."""
    if url.get_backend_name() != "sqlite":
        connect_args = postgres_connect_args(read_only=True)
        return create_engine(
            url, pool_pre_ping=True, connect_args=connect_args, json_serializer=_strict_json
        )
    path = Path(str(url.database)).expanduser()
    if url.database in (None, "", ":memory:") or not path.is_file():
        raise DatabaseUnavailableError(
            f"there is no SQLite database at {display_url(url)} to read; run `trainq train` "
            "first, or point TRAINQ_HOME / TRAINQ_DATABASE_URL at an existing one"
        )
    # Never immutable here: a reader that stays open must see the writers' later commits.
    return _create_read_only_sqlite_engine(url, path, immutable=is_read_only(path))


def _create_sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every checkout would see a different empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path = Path(str(url.database)).expanduser()
        _refuse_empty_file(path, url)
        if is_read_only(path):
            return _create_read_only_sqlite_engine(url, path)
        directory = path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnavailableError(
                f"cannot create {directory} for the SQLite database ({error.strerror}); "
                "set TRAINQ_HOME to a writable local directory or TRAINQ_DATABASE_URL"
            ) from error
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=_strict_json,
        )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


#: How long a new SQLite file may stay empty while the process that created it writes its header.
EMPTY_FILE_GRACE_S: Final = 10.0


def _refuse_empty_file(path: Path, url: URL) -> None:
    """A 0-byte file is not a database we made: refuse it rather than silently start a new one.

    SQLite would take an empty file as a new, empty database, so a mistyped TRAINQ_DATABASE_URL
    (or a file truncated by a failed copy) would quietly become a fresh trainq database. trainq
    never leaves one behind: switching a new file to WAL writes its header at once. A file that is
    that young may be another process's new database in the instant between its creation and
    its header (two commands started together), so only an empty file older than
    ``EMPTY_FILE_GRACE_S`` is refused.
    """
    try:
        status = path.stat() if path.is_file() else None
    except OSError:
        return  # unreadable: SQLite's own error says why
    if (
        status is not None
        and status.st_size == 0
        and time.time() - status.st_mtime > EMPTY_FILE_GRACE_S
    ):
        raise DatabaseCorruptError(
            f"the SQLite file {display_url(url)} is empty (0 bytes), so it is not a trainq "
            "database. Delete it to start a new database there, or point TRAINQ_HOME / "
            "TRAINQ_DATABASE_URL at the right file."
        )


def is_read_only(path: Path) -> bool:
    """Whether an existing SQLite file (or its directory) cannot be written by this process.

    ``os.access`` reports a read-only mount (EROFS) even to root, for whom permission bits do not
    count. SQLite needs the directory writable too, for its ``-wal`` and ``-shm`` files.
    """
    return path.is_file() and not (
        os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    )


def _create_read_only_sqlite_engine(url: URL, path: Path, *, immutable: bool = True) -> Engine:
    """An engine that only reads: commands that read keep working on a read-only TRAINQ_HOME.

    Writes fail with SQLITE_READONLY (``DatabaseReadOnlyError``, naming TRAINQ_HOME). Without a
    ``-wal`` file every commit is in the main file and SQLite may open it ``immutable`` (no locks,
    no ``-shm`` to create, which a read-only directory would forbid); with one, ``mode=ro`` reads
    the WAL's commits too.
    """
    wal = path.with_name(path.name + "-wal")
    query = "mode=ro" if wal.exists() or not immutable else "mode=ro&immutable=1"
    uri = f"file:{quote(str(path))}?{query}"

    def connect() -> sqlite3.Connection:
        # Pooled connections move between the embedded job thread and the main thread.
        return sqlite3.connect(
            uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )

    engine = create_engine(url, creator=connect, json_serializer=_strict_json)
    event.listen(engine, "connect", _configure_read_only_connection)
    event.listen(engine, "begin", _begin_read_only_transaction)
    return engine


def _configure_read_only_connection(
    dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry
) -> None:
    # No journal_mode or synchronous here: both would try to write to the file.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _begin_read_only_transaction(connection: Connection) -> None:
    # BEGIN IMMEDIATE would ask for a write lock that a read-only connection cannot take.
    connection.exec_driver_sql("BEGIN")


def _configure_sqlite_connection(
    dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry
) -> None:
    # pysqlite would otherwise BEGIN (DEFERRED) on its own before DML only; we emit BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit survives power loss (WAL + NORMAL may lose the last commits).
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a DEFERRED transaction that reads and then writes
    # gets SQLITE_BUSY at once when another writer got in between, and busy_timeout cannot help.
    readonly = bool(connection.get_execution_options().get(READONLY_OPTION, False))
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
