"""Alembic, driven programmatically: no alembic.ini, migrations shipped inside the package."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

from storage.errors import SchemaOutdatedError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


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


def packaged_revisions() -> tuple[tuple[str, ...], frozenset[str]]:
    """The head revisions and every revision of the migrations shipped in this package."""
    scripts = ScriptDirectory.from_config(alembic_config())
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return tuple(scripts.get_heads()), known


@dataclass(frozen=True)
class Revision:
    """One packaged migration, as ``trainq db history`` lists it."""

    revision: str
    down_revision: str | None
    message: str


def packaged_history() -> list[Revision]:
    """Every packaged migration, newest first."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [
        Revision(
            revision=script.revision,
            down_revision=_single(script.down_revision),
            message=(script.doc or "").strip().splitlines()[0] if script.doc else "",
        )
        for script in scripts.walk_revisions()
    ]


def _single(revision: str | Sequence[str] | None) -> str | None:
    if revision is None or isinstance(revision, str):
        return revision
    return ", ".join(revision)


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
