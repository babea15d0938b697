"""A new embedded database: its schema made from the models in one transaction, without Alembic.

Every first ``trainq train`` in a new ``TRAINQ_HOME`` used to import Alembic and replay each
migration in turn: about half a second of the command's start, spent while TensorFlow's import
competes for the same interpreter lock. An empty SQLite database has nothing to migrate, so it
gets ``CREATE TABLE`` from the models and Alembic's version table stamped at head, as Alembic's
own ``create_all`` + ``stamp`` recipe does. ``tests/storage/test_fresh_schema.py`` checks that
the result is the schema the migrations build, table by table.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, MetaData, PrimaryKeyConstraint, String, Table, inspect

from storage.schema_state import HEAD_REVISIONS

#: Alembic's version table as ``alembic upgrade`` creates it, so later migrations find it.
_VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def create_fresh_schema(connection: Connection) -> bool:
    """Create the whole schema at head on a database with no tables at all.

    Call it inside a write transaction: on SQLite that is ``BEGIN IMMEDIATE``, so of two
    processes opening the same new home one creates the schema and the other finds it made.

    Returns:
        True when the schema was created; False (nothing written) when the database already
        has tables, which only the migrations may change.
    """
    if inspect(connection).get_table_names():
        return False
    from storage.models import Base

    Base.metadata.create_all(connection)
    _VERSION_TABLE.create(connection)
    connection.execute(_VERSION_TABLE.insert(), [{"version_num": head} for head in HEAD_REVISIONS])
    return True
