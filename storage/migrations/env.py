"""Alembic environment: trainq runs migrations programmatically (see ``storage.schema``).

The caller hands over an open connection in ``config.attributes["connection"]``; there is no
alembic.ini and no URL here, so credentials never pass through Alembic's configuration.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from storage.models import Base

#: Any fixed 64-bit number; serializes concurrent upgrades of one PostgreSQL database.
_UPGRADE_LOCK_KEY = 0x7472_6169_6E71  # "trainq"


def run_migrations_online() -> None:
    """Run the migrations on the connection the caller passed in."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("trainq migrations run through storage.Database.upgrade() only")
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
