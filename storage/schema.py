"""Alembic, driven programmatically: no alembic.ini, migrations shipped inside the package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

from storage.errors import SchemaOutdatedError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands relative to this version of trainq."""

    #: Revisions recorded in the database (empty: no trainq schema at all).
    current: tuple[str, ...]
    #: The newest revisions this code ships.
    head: tuple[str, ...]
    #: Every revision this code knows.
    known: frozenset[str]

    @property
    def up_to_date(self) -> bool:
        """True when the database is exactly at head."""
        return set(self.current) == set(self.head)

    @property
    def newer_than_code(self) -> bool:
        """True when the database carries a revision this code does not know."""
        return any(revision not in self.known for revision in self.current)


def alembic_config(connection: Connection | None = None) -> Config:
    """Build an Alembic config pointing at the packaged migrations.

    Args:
        connection: the open connection env.py migrates on.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def schema_state(connection: Connection) -> SchemaState:
    """Read the database's revision and compare it with the packaged migrations."""
    scripts = ScriptDirectory.from_config(alembic_config())
    current = MigrationContext.configure(connection).get_current_heads()
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return SchemaState(current=tuple(current), head=tuple(scripts.get_heads()), known=known)


def upgrade_to_head(connection: Connection) -> None:
    """Apply every migration the database lacks, in one transaction (env.py begins it).

    Raises:
        SchemaOutdatedError: Alembic cannot find a path from the database's revision to head
            (the database was migrated by another version of trainq).
    """
    try:
        command.upgrade(alembic_config(connection), "head")
    except CommandError as error:
        raise SchemaOutdatedError(
            f"cannot upgrade the schema: {error}. Was this database migrated by a newer trainq?"
        ) from error
