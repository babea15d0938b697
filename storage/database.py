"""The database handle: transactions, retries, health check, schema.

A :class:`Database` is cheap; it shares this process's engine for its URL (see ``storage.engine``)
and creates it on first use. Sessions exist only inside storage: :meth:`Database.transaction` is
for the repository, and everything else talks to :class:`storage.Repository`.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from storage.driver_errors import driver_errors_translated
from storage.engine import READONLY_OPTION, display_url, get_engine, normalize_url
from storage.errors import (
    DatabaseUnavailableError,
    SchemaOutdatedError,
    StorageError,
    TransactionConflictError,
)

if TYPE_CHECKING:
    from storage.schema_state import SchemaState

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Errors worth another try for idempotent work: the server went away, or PostgreSQL aborted us.
RETRYABLE_ERRORS: tuple[type[StorageError], ...] = (
    DatabaseUnavailableError,
    TransactionConflictError,
)


@dataclass(frozen=True)
class _RetryBound:
    deadline: Callable[[], float]
    on_retry: Callable[[StorageError], None]


#: Set by :func:`retrying_until`: when this thread's idempotent work stops retrying.
_RETRY_UNTIL: ContextVar[_RetryBound | None] = ContextVar("trainq_retry_until", default=None)


def _ignore(_: StorageError) -> None:
    pass


@contextmanager
def retrying_until(
    deadline: Callable[[], float], *, on_retry: Callable[[StorageError], None] = _ignore
) -> Iterator[None]:
    """Within the block, idempotent work of this thread retries until ``deadline()`` instead of
    until the database's ``retry_deadline_s``, and tells ``on_retry`` of every error it retries.

    A job waits out an outage for exactly as long as its lease lasts: its deadline is a
    ``time.monotonic()`` value, asked again before every retry, so a lease renewed meanwhile (by
    its heartbeat thread) moves it.
    """
    token = _RETRY_UNTIL.set(_RetryBound(deadline, on_retry))
    try:
        yield
    finally:
        _RETRY_UNTIL.reset(token)


class Database:
    """One database (SQLite file or PostgreSQL) as seen from this process."""

    def __init__(
        self, url: str, *, retry_deadline_s: float = 15.0, read_only: bool = False
    ) -> None:
        """Remember the URL; no connection is made until the first use.

        Args:
            url: SQLAlchemy URL; ``postgresql://`` is rewritten to ``postgresql+psycopg://``.
            retry_deadline_s: how long idempotent work keeps retrying after the database went
                away (long enough for a PostgreSQL restart, short enough to fail visibly).
            read_only: every connection refuses writes: SQLite opened ``mode=ro``, PostgreSQL
                sessions with ``default_transaction_read_only`` (the web dashboard).

        Raises:
            ConfigurationError: the URL is malformed or names an unsupported database.
        """
        self._url = normalize_url(url)
        self._retry_deadline_s = retry_deadline_s
        self._read_only = read_only
        self._schema_checked = False

    @property
    def url(self) -> str:
        """The URL with the password hidden, for messages."""
        return display_url(self._url)

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._url.get_backend_name()

    @property
    def file_path(self) -> Path | None:
        """The SQLite file (``None`` for PostgreSQL and in-memory SQLite)."""
        if self.dialect_name != "sqlite" or self._url.database in (None, "", ":memory:"):
            return None
        return Path(str(self._url.database)).expanduser()

    @property
    def engine(self) -> Engine:
        """The shared engine (created on first access). Storage-internal."""
        return get_engine(self._url, read_only=self._read_only)

    def dispose(self, *, close: bool = False) -> None:
        """Drop this engine's pooled connections.

        Call it in a freshly forked child (Celery ``worker_process_init``) with the default
        ``close=False``: the child forgets the parent's sockets without closing them under the
        parent. (An ``os.register_at_fork`` hook does the same as a safety net.) At shutdown or
        in tests use ``close=True``.
        """
        self.engine.dispose(close=close)

    def run_outside_a_transaction(self, statements: Sequence[str]) -> None:
        """Run statements that cannot run inside a transaction (SQLite's ``VACUUM``) on the
        driver's own connection, which autocommits: the engine begins a transaction (IMMEDIATE)
        on a connection's first statement. Errors are translated like every other.

        Raises:
            DatabaseBusyError: another process held the database for too long.
            StorageError: a statement failed (a full disk, among others).
        """
        with driver_errors_translated(self.url):
            connection = self.engine.raw_connection()
            try:
                for statement in statements:
                    try:
                        connection.cursor().execute(statement)
                    except sqlite3.Error as error:  # the driver's own: translated like others
                        raise sa_exc.DBAPIError(statement, None, error) from error
            finally:
                connection.close()

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Session]:
        """Open a session in one transaction: commit on success, roll back on error, close.

        Storage-internal: the session must not outlive the ``with`` block or leave storage.
        SQLAlchemy and driver errors come out as :class:`StorageError` subclasses; trainq's own
        errors raised inside the block pass through unchanged (after the rollback).

        Args:
            readonly: the block only reads; on SQLite it then begins DEFERRED instead of
                IMMEDIATE, so it does not wait for (or block) writers.
        """
        session = Session(self.engine, expire_on_commit=False, autoflush=True)
        try:
            with driver_errors_translated(self.url):  # no SQLAlchemy exception leaves storage
                try:
                    if readonly:
                        session.connection(execution_options={READONLY_OPTION: True})
                    yield session
                    session.commit()
                except BaseException:
                    _rollback_quietly(session)  # before translating: the connection goes back clean
                    raise
        finally:
            session.close()

    def run(
        self,
        work: Callable[[Session], T],
        *,
        readonly: bool = False,
        idempotent: bool = False,
    ) -> T:
        """Run ``work(session)`` in one transaction, retrying idempotent work on transient errors.

        ``pool_pre_ping`` only protects the checkout; a server restart mid-transaction surfaces
        here. Idempotent work (reads, fenced idempotent writes) is retried with jittered
        exponential backoff until ``retry_deadline_s`` (or the deadline of an enclosing
        :func:`retrying_until`; PostgreSQL only); other work fails at once because its commit may
        or may not have happened.

        Args:
            work: the transaction body; it may run more than once when ``idempotent``.
            readonly: see :meth:`transaction`.
            idempotent: running ``work`` twice has the same effect as running it once.

        Raises:
            DatabaseUnavailableError: still unreachable at the deadline (or at once).
            StorageError: any other database failure.
        """
        # SQLite is a local file: its errors do not heal by waiting (busy already waited 30 s).
        retry = idempotent and self.dialect_name != "sqlite"
        fixed_deadline = time.monotonic() + self._retry_deadline_s
        bound = _RETRY_UNTIL.get()
        delay_s = 0.05
        while True:
            try:
                with self.transaction(readonly=readonly) as session:
                    return work(session)
            except RETRYABLE_ERRORS as error:
                deadline = fixed_deadline if bound is None else bound.deadline()
                left_s = deadline - time.monotonic()
                if not retry or left_s <= 0:
                    raise
                if bound is not None:
                    bound.on_retry(error)
                # Debug only: whoever waits says once how the outage ended, not once per retry.
                log.debug("database error, retrying in %.2f s: %s", delay_s, error)
                # Jitter, so workers retrying together do not hit a restarted server in lockstep;
                # the last try falls on the deadline itself.
                time.sleep(min(delay_s * random.uniform(0.5, 1.0), left_s))
                delay_s = min(delay_s * 2, 2.0)

    def ping(self) -> None:
        """Check that the database answers a trivial query.

        Raises:
            DatabaseUnavailableError: it does not (the message says what to check).
        """
        engine = self.engine  # its own errors (a bad path, an empty file) say more: keep them
        try:
            with driver_errors_translated(self.url), engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DatabaseUnavailableError:
            raise
        except StorageError as error:  # whatever the driver said, the database does not answer
            raise DatabaseUnavailableError(str(error)) from error

    def schema(self) -> SchemaState:
        """Where this database's schema stands (its Alembic revision against this code's head).

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        from storage.schema_state import schema_state

        with driver_errors_translated(self.url), self.engine.connect() as connection:
            return schema_state(connection.execution_options(**{READONLY_OPTION: True}))

    def upgrade(self) -> tuple[SchemaState, SchemaState]:
        """Migrate the schema to the newest revision this code ships (no-op when at head).

        Returns:
            The schema before and after, so a caller can say what was created or changed.

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
            StorageError: a migration failed (the transaction was rolled back).
        """
        before = self.schema()
        from storage.schema import upgrade_to_head  # Alembic is slow to import; only here

        with driver_errors_translated(self.url), self.engine.connect() as connection:
            upgrade_to_head(connection)
        self._schema_checked = True
        return before, self.schema()

    def ensure_schema(self, *, auto_upgrade: bool) -> None:
        """Make sure the schema is at head, upgrading it when allowed.

        The embedded SQLite default passes ``auto_upgrade=True`` so a fresh machine just works;
        a shared PostgreSQL is upgraded on purpose, by ``trainq db upgrade``.

        Raises:
            SchemaOutdatedError: the schema is missing or old and ``auto_upgrade`` is off, or
                the database is newer than this code.
            DatabaseUnavailableError: the database cannot be reached.
        """
        if self._schema_checked:
            return
        state = self.schema()
        if state.newer_than_code:
            raise SchemaOutdatedError(
                f"the database {self.url} is at schema revision {', '.join(state.current)}, "
                "newer than this trainq knows; upgrade trainq on this machine."
            )
        if not state.up_to_date:
            if not auto_upgrade:
                found = ", ".join(state.current) or "no trainq schema"
                raise SchemaOutdatedError(
                    f"the database {self.url} has {found}; this trainq needs revision "
                    f"{', '.join(state.head)}: run `trainq db upgrade`."
                )
            if not (state.current == () and self._created_fresh_schema()):
                self.upgrade()
        self._schema_checked = True

    def _created_fresh_schema(self) -> bool:
        """On a new, empty SQLite database: the schema straight from the models (see
        ``storage.fresh_schema``). PostgreSQL is shared and upgraded on purpose, by Alembic."""
        if self.dialect_name != "sqlite":
            return False
        from storage.fresh_schema import create_fresh_schema

        with driver_errors_translated(self.url), self.engine.begin() as connection:
            return create_fresh_schema(connection)


def _rollback_quietly(session: Session) -> None:
    # The connection may already be gone; the original error is the one worth reporting.
    try:
        session.rollback()
    except sa_exc.SQLAlchemyError as error:
        log.debug("rollback failed after an error: %s", error)
