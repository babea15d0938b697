"""Where a database's schema stands, read without importing Alembic.

Every command checks the schema before it touches the database, and importing Alembic costs
about 0.1 s, a tenth of the queue's whole overhead budget. The revisions are recorded here as
constants; ``tests/storage/test_migrations.py`` checks them against the packaged migrations, so
adding a migration without updating them fails the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: The newest revisions of ``storage/migrations`` (update with every new migration).
HEAD_REVISIONS: tuple[str, ...] = ("0006_run_management",)
#: Every revision of ``storage/migrations``.
KNOWN_REVISIONS: frozenset[str] = frozenset(
    {
        "0001",
        "0002_sweeps",
        "0003_evaluation_jobs",
        "0004_run_attempts",
        "0005_datasets",
        "0006_run_management",
    }
)


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands relative to this version of trainq."""

    #: Revisions recorded in the database (empty: no trainq schema at all).
    current: tuple[str, ...]
    #: The newest revisions this code ships.
    head: tuple[str, ...] = HEAD_REVISIONS
    #: Every revision this code knows.
    known: frozenset[str] = KNOWN_REVISIONS

    @property
    def up_to_date(self) -> bool:
        """True when the database is exactly at head."""
        return set(self.current) == set(self.head)

    @property
    def newer_than_code(self) -> bool:
        """True when the database carries a revision this code does not know."""
        return any(revision not in self.known for revision in self.current)


def schema_state(connection: Connection) -> SchemaState:
    """Read the database's revision from Alembic's version table."""
    # Imported here: the constants above serve the quick read path, which has no SQLAlchemy.
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table("alembic_version"):
        return SchemaState(current=())
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return SchemaState(current=tuple(rows))
