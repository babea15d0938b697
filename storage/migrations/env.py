"""Alembic environment: trainq runs migrations programmatically (see ``storage.schema``).

``trainq db upgrade`` hands over an open connection in ``config.attributes["connection"]``. Plain
``alembic`` commands run from the project (``[tool.alembic]`` in pyproject.toml) get none: they
open one on the database trainq's settings name (``TRAINQ_DATABASE_URL``, else the embedded
SQLite), so credentials never pass through Alembic's configuration either way.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from storage.models import Base

#: Any fixed 64-bit number; serializes concurrent upgrades of one PostgreSQL database.
_UPGRADE_LOCK_KEY = 0x7472_6169_6E71  # "trainq"


def run_migrations_online() -> None:
    """Run the migrations on the connection the caller passed in, or on trainq's database."""
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _migrate(connection)
        return
    from storage import Database, Settings

    with Database(Settings.from_env().database_url).engine.connect() as opened:
        _migrate(opened)


def _migrate(connection: Connection) -> None:
    if connection.dialect.name == "sqlite" and not connection.in_transaction():
        # Alembic gives a database without transactional DDL (its view of SQLite) one transaction
        # per migration, so two processes upgrading at once could interleave between migrations
        # and both CREATE a table. SQLite's DDL is transactional: one transaction, begun here
        # with BEGIN IMMEDIATE (storage.engine), holds the write lock for the whole upgrade, and
        # the second process then finds the schema at head.
        with connection.begin():
            _run_migrations(connection)
        return
    _run_migrations(connection)


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables in future migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two processes upgrading at once would both try CREATE TABLE; the second waits here
            # and then finds the schema at head. (SQLite serializes through BEGIN IMMEDIATE.)
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY}
            )
            # The 30 s statement timeout set per connection (storage.engine) is for the app; a
            # migration of a large table may take longer and must not be killed halfway.
            connection.execute(text("SET LOCAL statement_timeout = 0"))
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run `trainq db upgrade`")
run_migrations_online()
