"""One helper opens every unit of database work and turns driver errors into trainq's own.

``Database.transaction`` (under ``Database.run``, which every repository operation calls) commits,
rolls back and closes; ``storage.driver_errors.driver_errors_translated`` maps SQLAlchemy and
driver errors there and in the database's connection-level checks. The last test keeps it the
only way: no other storage module opens a session or catches a driver error of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from storage import Database, DatabaseUnavailableError, InvalidValueError, Repository
from tests.storage.support import new_run

STORAGE = Path(__file__).resolve().parents[2] / "storage"

#: Modules allowed to open sessions or connections themselves, and why.
OPENS_ITS_OWN = {
    "database.py": "the helper itself",
    "quick_reads.py": "reads through sqlite3/psycopg; on any error it answers None and the "
    "caller reads through the repository",
    "engine.py": "the SQLite connection factory of the engine",
    "migrations/env.py": "Alembic's entry point, given a connection by `trainq db upgrade`",
}
#: Modules allowed to name SQLAlchemy's exceptions.
NAMES_DRIVER_ERRORS = {
    "driver_errors.py": "the translation",
    "database.py": "a rollback that fails after an error is only logged",
    "engine.py": "a malformed URL is a ConfigurationError",
}


def test_trainqs_own_error_in_a_transaction_passes_through_after_the_rollback(
    db: Database,
) -> None:
    repo = Repository(db)
    run = new_run(repo)
    refused = InvalidValueError("refused half-way")

    def refuse_midway(session: Session) -> None:
        session.connection().exec_driver_sql(
            f"UPDATE runs SET name = 'changed' WHERE id = {run.id}"
        )
        raise refused

    with pytest.raises(InvalidValueError) as raised:
        db.run(refuse_midway)
    assert raised.value is refused
    assert repo.get_run(run.id).name is None


@pytest.mark.postgres
def test_the_schema_of_a_database_nobody_listens_on_is_unavailable_not_a_driver_error() -> None:
    with pytest.raises(DatabaseUnavailableError, match="TRAINQ_DATABASE_URL") as raised:
        Database("postgresql://postgres@127.0.0.1:1/trainq").schema()
    assert isinstance(raised.value.__cause__, sa_exc.OperationalError)


def _storage_modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(STORAGE).as_posix(), ast.parse(path.read_text(), str(path)))
        for path in sorted(STORAGE.rglob("*.py"))
        if "versions" not in path.parts  # migrations are Alembic's, run inside `upgrade`
    ]


def _opens_a_session_or_connection(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    function = node.func
    if isinstance(function, ast.Name):
        return function.id in {"Session", "sessionmaker"}
    return isinstance(function, ast.Attribute) and function.attr in {
        "connect",
        "begin",
        "raw_connection",
    }


def _names_driver_errors(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        names = {alias.name for alias in node.names}
        return node.module == "sqlalchemy.exc" or (node.module == "sqlalchemy" and "exc" in names)
    return isinstance(node, ast.Import) and any(a.name == "sqlalchemy.exc" for a in node.names)


def test_only_the_database_opens_sessions_and_only_the_translation_names_driver_errors() -> None:
    opening, naming = set(), set()
    for name, tree in _storage_modules():
        for node in ast.walk(tree):
            if _opens_a_session_or_connection(node):
                opening.add(name)
            if _names_driver_errors(node):
                naming.add(name)
    assert "database.py" in opening and "driver_errors.py" in naming  # the scan sees them
    assert opening - set(OPENS_ITS_OWN) == set()
    assert naming - set(NAMES_DRIVER_ERRORS) == set()
