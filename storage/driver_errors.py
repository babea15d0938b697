"""Turn driver and SQLAlchemy exceptions into trainq's own, with a message that says what to do.

:func:`driver_errors_translated` is the one place that does it: ``Database.transaction`` (and so
every repository operation, through ``Database.run``) and the database's connection-level checks
(ping, schema state, migrations) all open their work inside it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from storage.errors import (
    DatabaseBusyError,
    DatabaseCorruptError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
    DiskFullError,
    SchemaOutdatedError,
    StorageError,
    TransactionConflictError,
)

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_CONNECTION_CLASS = "08"  # connection_exception and its subclasses
_PG_SERVER_GOING_AWAY = {"57P01", "57P02", "57P03"}  # admin/crash shutdown, cannot connect now
_PG_CONFLICTS = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_PG_TIMEOUTS = {"55P03", "57014"}  # lock_not_available, query_canceled (statement_timeout)
_PG_SCHEMA_MISSING = {"42P01", "42703"}  # undefined_table, undefined_column

_SQLITE_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_SQLITE_UNUSABLE_CODES = {10, 14}  # IOERR, CANTOPEN
_SQLITE_READONLY = 8
_SQLITE_FULL = 13
_SQLITE_CORRUPT_CODES = {11, 26}  # CORRUPT, NOTADB ("file is not a database")

_UPGRADE_HINT = "run `trainq db upgrade` (or `trainq db upgrade --help`)"


@contextmanager
def driver_errors_translated(where: str) -> Iterator[None]:
    """Within the block, any SQLAlchemy or driver error comes out as the matching
    :class:`StorageError` (chained to the original); trainq's own errors pass through.

    Args:
        where: the database, as it may be shown (password hidden).
    """
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        raise translate(error, where) from error


def translate(error: Exception, where: str) -> StorageError:
    """Map a driver-level exception to the matching :class:`StorageError`.

    Args:
        error: what SQLAlchemy or the driver raised.
        where: the database, as it may be shown (password hidden).

    Returns:
        The exception to raise instead (the caller chains ``from error``).
    """
    if isinstance(error, sa_exc.TimeoutError):
        return DatabaseBusyError(
            f"no free database connection to {where} within the pool timeout; too many concurrent "
            "operations in this process. Retry, or lower the worker's concurrency."
        )
    if not isinstance(error, sa_exc.DBAPIError):
        return StorageError(f"database error on {where}: {error}")
    original = error.orig
    detail = str(original).strip().splitlines()[0] if str(original).strip() else repr(original)
    if isinstance(original, sqlite3.Error):
        return _translate_sqlite(original, detail, where)
    return _translate_postgres(error, detail, where)


def _translate_sqlite(original: sqlite3.Error, detail: str, where: str) -> StorageError:
    # Primary result codes (https://www.sqlite.org/rescode.html); the low byte of extended ones.
    code = getattr(original, "sqlite_errorcode", 0) & 0xFF
    if code in _SQLITE_BUSY_CODES:
        return DatabaseBusyError(
            f"SQLite database {where} stayed locked by another process for 30 s ({detail}). "
            "Another trainq process holds a long write transaction; retry, and keep the file on "
            "a local disk (not NFS)."
        )
    if code == _SQLITE_FULL:
        return DiskFullError(
            f"no space left on device at {sqlite_directory(where)} (the SQLite database {where}: "
            f"{detail}). Free some space there, or set TRAINQ_HOME to a disk with room; runs "
            "that stopped continue with `trainq resume RUN_ID`."
        )
    if code == _SQLITE_READONLY:
        return DatabaseReadOnlyError(
            f"the SQLite database {where} is read-only here ({detail}): its directory "
            f"{sqlite_directory(where)} (TRAINQ_HOME) or the file is not writable, e.g. a "
            "read-only mount. Commands that only read work; to write, make it writable or set "
            "TRAINQ_HOME to a writable directory."
        )
    if code in _SQLITE_CORRUPT_CODES:
        return DatabaseCorruptError(
            f"the SQLite file {where} is damaged or not a trainq database ({detail}). Restore "
            "it from a backup or point TRAINQ_HOME / TRAINQ_DATABASE_URL elsewhere; "
            "`trainq db check` lists what is damaged.",
            detail,
        )
    if code in _SQLITE_UNUSABLE_CODES:
        return DatabaseUnavailableError(
            f"cannot use the SQLite database {where}: {detail}. Check that the directory exists, "
            "is writable, has free space and is on a local disk, or set TRAINQ_HOME / "
            "TRAINQ_DATABASE_URL."
        )
    if "no such table" in detail or "no such column" in detail:
        return SchemaOutdatedError(
            f"the database {where} has no trainq schema or an older one ({detail}); "
            + _UPGRADE_HINT
        )
    return StorageError(f"SQLite error on {where}: {detail}")


def sqlite_directory(where: str) -> str:
    """The directory of the SQLite file named by the URL ``where`` (for messages)."""
    path = where.removeprefix("sqlite:///").split("?", 1)[0]
    return os.path.dirname(path) or "."


def _translate_postgres(error: sa_exc.DBAPIError, detail: str, where: str) -> StorageError:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _PG_CONFLICTS:
        return TransactionConflictError(
            f"PostgreSQL aborted the transaction on {where} ({detail}); it is safe to retry."
        )
    if sqlstate in _PG_TIMEOUTS:
        return DatabaseBusyError(
            f"a lock or statement timed out on {where} ({detail}); another process holds the "
            "row. Retry; if it persists, look for a stuck worker with `trainq status`."
        )
    if sqlstate in _PG_SCHEMA_MISSING:
        return SchemaOutdatedError(
            f"the database {where} has no trainq schema or an older one ({detail}); "
            + _UPGRADE_HINT
        )
    connection_lost = (
        error.connection_invalidated
        or (sqlstate is None and isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError))
        or (sqlstate is not None and sqlstate.startswith(_PG_CONNECTION_CLASS))
        or sqlstate in _PG_SERVER_GOING_AWAY
    )
    if connection_lost:
        return DatabaseUnavailableError(
            f"cannot reach the database at {where} ({detail}). Check that PostgreSQL is running "
            "and that TRAINQ_DATABASE_URL is right; `trainq status` checks the connection."
        )
    return StorageError(f"database error on {where}: {detail}")
