"""The most frequent read, ``trainq runs list``, straight through the database driver.

``trainq runs list`` is the command people run most, often in a loop. Importing SQLAlchemy, its
ORM and the models cost over half of that command's time, for one SELECT. So when the schema is
exactly at head, the listing reads the rows itself (``sqlite3`` for the embedded database, psycopg
for PostgreSQL) and maps them with the repository's own :func:`storage.record_mapping.run_record`
and :mod:`storage.metric_codec`; ``tests/storage/test_quick_reads.py`` holds its answers equal to
the repository's for every filter, on both databases.

It only ever reads (a SQLite file is opened ``mode=rw``, which never creates one; a PostgreSQL
session is read-only), and only the happy case: a database that is missing, empty, read-only, at
another revision, slow to lock or to answer, or an error of any kind gives ``None``, and the
caller takes the repository, which creates, upgrades, waits or explains exactly as every other
command does.
"""

from __future__ import annotations

import json
import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from storage.connect_options import postgres_connect_args
from storage.metric_codec import decode_chunks, wanted_steps
from storage.record_mapping import RUN_COLUMNS, run_record
from storage.records import JobKind, RunStatus
from storage.schema_state import HEAD_REVISIONS as SCHEMA_HEAD_REVISIONS
from storage.validation import check_tags

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from psycopg import Connection

    from storage.metric_codec import ChunkRow
    from storage.records import FloatArray, RunRecord

#: The revisions a database at head records (``storage.schema_state``, kept true by the tests).
HEAD_REVISIONS: frozenset[str] = frozenset(SCHEMA_HEAD_REVISIONS)

#: How long a quick read waits for a lock or a server before leaving it to the repository, which
#: waits its full time and explains a failure.
QUICK_TIMEOUT_S = 2

_JSON_COLUMNS = ("config", "summary", "tags")
_TIME_COLUMNS = (
    "lease_expires_at",
    "created_at",
    "started_at",
    "finished_at",
    "published_at",
    "archived_at",
)
_POSTGRES_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")


class QuickReader(ABC):
    """Reads of one database at head; see the module's docstring."""

    @staticmethod
    def open(database_url: str) -> QuickReader | None:
        """A reader of ``database_url``, or None where the repository must be used."""
        reader: QuickReader | None
        if database_url.startswith("sqlite:"):
            reader = SqliteQuickReader.connect(database_url)
        elif database_url.startswith(_POSTGRES_SCHEMES):
            reader = PostgresQuickReader.connect(database_url)
        else:
            return None
        if reader is None:
            return None
        revisions = reader._fetch("SELECT version_num FROM alembic_version", [])
        if revisions is None or {row[0] for row in revisions} != HEAD_REVISIONS:
            reader.close()
            return None
        return reader

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def _fetch(self, statement: str, parameters: Sequence[Any]) -> list[Any] | None:
        """Every row of ``statement`` (``?`` placeholders); None on any database error."""

    @abstractmethod
    def _tag_filter(self, key: str) -> tuple[str, str]:
        """``(clause, parameter)``: the clause holds where tag ``key``'s value, as text, equals a
        second parameter."""

    @abstractmethod
    def _columns(self, row: Sequence[Any]) -> dict[str, Any]:
        """One ``runs`` row as SQLAlchemy's types return it: JSON decoded, UTC times aware."""

    def list_runs(
        self,
        *,
        statuses: Sequence[RunStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
        limit: int | None = None,
        sweep_id: int | None = None,
        data_sha256: Collection[str] | None = None,
        archived: bool | None = False,
    ) -> list[RunRecord] | None:
        """:meth:`Repository.list_runs` of training runs; None if the read failed.

        Raises:
            InvalidValueError: a tag key is malformed (as the repository raises it).
        """
        clauses: list[str] = ["kind = ?"]
        parameters: list[Any] = [JobKind.TRAIN.value]
        if statuses is not None:
            values = [RunStatus(status).value for status in statuses]
            clauses.append(f"status IN ({', '.join('?' * len(values))})" if values else "1 = 0")
            parameters += values
        for key, value in check_tags(tags or {}).items():
            clause, key_parameter = self._tag_filter(key)
            clauses.append(clause)
            parameters += [key_parameter, value]
        if name is not None:
            clauses.append("name = ?")
            parameters.append(name)
        if sweep_id is not None:
            clauses.append("sweep_id = ?")
            parameters.append(sweep_id)
        if data_sha256 is not None:
            hashes = list(data_sha256)
            clauses.append(
                f"data_sha256 IN ({', '.join('?' * len(hashes))})" if hashes else "1 = 0"
            )
            parameters += hashes
        if archived is not None:
            clauses.append(f"archived_at IS {'NOT ' if archived else ''}NULL")
        statement = (
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE {' AND '.join(clauses)} "
            "ORDER BY id DESC"
        )
        if limit is not None:
            statement += " LIMIT ?"
            parameters.append(max(limit, 0))
        rows = self._fetch(statement, parameters)
        if rows is None:
            return None
        try:
            return [run_record(self._columns(row)) for row in rows]
        except (ValueError, TypeError):  # a value SQLAlchemy would read differently
            return None

    def read_metric_arrays(
        self, run_id: int, *, first_step: int | None = None, last_step: int | None = None
    ) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray] | None:
        """:meth:`Repository.read_metric_arrays` of a run that exists; None if the read failed.

        Raises:
            StorageError: a stored chunk is corrupt (as the repository raises it).
        """
        statement = "SELECT first_step, n_steps, loss, accuracy FROM metric_chunks WHERE run_id = ?"
        parameters: list[int] = [run_id]
        if last_step is not None:
            statement += " AND first_step <= ?"
            parameters.append(last_step)
        if first_step is not None:
            statement += " AND first_step + n_steps - 1 >= ?"
            parameters.append(first_step)
        rows = self._fetch(f"{statement} ORDER BY first_step", parameters)
        if rows is None:
            return None
        chunks: list[ChunkRow] = [(int(a), int(b), bytes(c), bytes(d)) for a, b, c, d in rows]
        steps, loss, accuracy = decode_chunks(run_id, chunks)
        keep = wanted_steps(steps, first_step, last_step, 1)
        return steps[keep], loss[keep], accuracy[keep]


class SqliteQuickReader(QuickReader):
    """The embedded database: SQLAlchemy stores JSON as text and times as naive UTC text."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @classmethod
    def connect(cls, database_url: str) -> SqliteQuickReader | None:
        """A reader of ``sqlite:///PATH``; None unless PATH is an existing, non-empty, writable
        file named plainly (no query, no escapes)."""
        prefix = "sqlite:///"
        if not database_url.startswith(prefix) or any(c in database_url for c in "?%#"):
            return None
        path = Path(database_url[len(prefix) :]).expanduser()
        try:
            if not path.is_file() or path.stat().st_size == 0:
                return None
        except OSError:
            return None
        if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
            return None  # a read-only home: the repository has the engine for it
        try:
            uri = f"file:{quote(str(path))}?mode=rw"
            return cls(sqlite3.connect(uri, uri=True, timeout=QUICK_TIMEOUT_S))
        except sqlite3.Error:
            return None

    def close(self) -> None:
        self._connection.close()

    def _fetch(self, statement: str, parameters: Sequence[Any]) -> list[Any] | None:
        try:
            return self._connection.execute(statement, parameters).fetchall()
        except sqlite3.Error:
            return None

    def _tag_filter(self, key: str) -> tuple[str, str]:
        # check_tags allows letters, digits, '_', '.', '-' only: nothing to escape in the path.
        return "CAST(json_extract(tags, ?) AS VARCHAR) = ?", f'$."{key}"'

    def _columns(self, row: Sequence[Any]) -> dict[str, Any]:
        columns = dict(zip(RUN_COLUMNS, row, strict=True))
        for column in _JSON_COLUMNS:
            text = columns[column]
            columns[column] = None if text is None else json.loads(text)
        for column in _TIME_COLUMNS:
            text = columns[column]
            columns[column] = (
                None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)
            )
        return columns


class PostgresQuickReader(QuickReader):
    """A cluster's PostgreSQL through psycopg: JSONB comes decoded, ``timestamptz`` aware."""

    def __init__(self, connection: Connection[tuple[Any, ...]]) -> None:
        self._connection = connection

    @classmethod
    def connect(cls, database_url: str) -> PostgresQuickReader | None:
        """A read-only session on ``database_url`` (any ``postgresql://`` form trainq takes)."""
        import psycopg

        scheme = next(s for s in _POSTGRES_SCHEMES if database_url.startswith(s))
        options = postgres_connect_args(read_only=True) | {"connect_timeout": QUICK_TIMEOUT_S}
        try:
            connection = psycopg.connect(
                "postgresql://" + database_url[len(scheme) :], autocommit=True, **options
            )
        except (psycopg.Error, ValueError):
            return None
        return cls(connection)

    def close(self) -> None:
        self._connection.close()

    def _fetch(self, statement: str, parameters: Sequence[Any]) -> list[Any] | None:
        import psycopg

        try:
            return self._connection.execute(statement.replace("?", "%s"), parameters).fetchall()
        except psycopg.Error:
            return None

    def _tag_filter(self, key: str) -> tuple[str, str]:
        return "(tags ->> ?) = ?", key

    def _columns(self, row: Sequence[Any]) -> dict[str, Any]:
        columns = dict(zip(RUN_COLUMNS, row, strict=True))
        for column in _TIME_COLUMNS:
            value = columns[column]
            columns[column] = None if value is None else value.astimezone(UTC)
        return columns
