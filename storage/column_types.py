"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, LargeBinary, cast
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as naive UTC
    and UTC is attached again on the way out. Naive datetimes are refused on the way in: guessing
    their zone is how timestamps drift by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive UTC for SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value!r}: storage only takes tz-aware datetimes")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend returned."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Blob(TypeDecorator[bytes]):
    """Bytes (BLOB on SQLite, BYTEA on PostgreSQL), read back as bytes whatever SQLite holds.

    SQLite keeps any storage class in any column: a blob edited through SQL (``UPDATE checkpoints
    SET weights = CAST(weights AS TEXT)``) comes back as TEXT, which Python's driver decodes as
    UTF-8 and fails on ("Could not decode to UTF-8": every read of the row, and so ``eval``,
    ``resume``, ``db check``, ended in exit 69). Every read casts to BLOB instead, which gives
    the stored bytes unchanged, and the blob's own check (a weight blob's SHA-256, a metric
    chunk's size) then says whether they are intact. On PostgreSQL the cast is a no-op.
    """

    impl = LargeBinary
    cache_ok = True

    def column_expression(self, column: ColumnElement[bytes]) -> ColumnElement[bytes]:
        """``CAST(column AS BLOB)`` in every SELECT of the column."""
        return cast(column, LargeBinary)


class PortableJSON(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL (indexable, compact, key order not kept).

    Not ``JSON().with_variant(JSONB(), "postgresql")``: that needs JSONB when the models are
    defined, and importing ``sqlalchemy.dialects.postgresql`` loads every PostgreSQL driver's
    dialect (asyncpg's too), some 50 ms of every embedded command's start on SQLite. Here the
    PostgreSQL type is imported only once a PostgreSQL dialect asks for it.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """JSONB for PostgreSQL, the dialect's JSON elsewhere."""
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def json_column_type() -> TypeEngine[Any]:
    """The type of every JSON column: see :class:`PortableJSON`."""
    return PortableJSON()
