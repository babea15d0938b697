"""The real services tests run against, and what to do when one is not there.

Locally a missing PostgreSQL or Redis skips the tests that need it; in CI (``CI`` set) it fails
them, so a broken service can never turn a red build green.
"""

from __future__ import annotations

import os
from typing import NoReturn

import psycopg
import pytest
import redis

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
PROBE_TIMEOUT_S = 3


def postgres_url(database: str) -> str:
    """SQLAlchemy URL of ``database`` on the test PostgreSQL (trust auth, no password)."""
    return f"postgresql+psycopg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


def postgres_admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the ``postgres`` database, for CREATE/DROP DATABASE."""
    return psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname="postgres",
        connect_timeout=PROBE_TIMEOUT_S,
        autocommit=True,
    )


def require_postgres() -> None:
    """Skip the calling test (fail it in CI) unless PostgreSQL answers on 127.0.0.1:5432."""
    problem = _postgres_problem()
    if problem is not None:
        _unavailable(f"PostgreSQL at {POSTGRES_HOST}:{POSTGRES_PORT} is unavailable: {problem}")


def require_redis() -> None:
    """Skip the calling test (fail it in CI) unless Redis answers PING on 127.0.0.1:6379."""
    problem = _redis_problem()
    if problem is not None:
        _unavailable(f"Redis at {REDIS_HOST}:{REDIS_PORT} is unavailable: {problem}")


def _postgres_problem() -> str | None:
    try:
        with postgres_admin_connection() as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip() or type(error).__name__
    return None


def _redis_problem() -> str | None:
    client = redis.Redis(
        host=REDIS_HOST,
        port=REDIS_PORT,
        socket_connect_timeout=PROBE_TIMEOUT_S,
        socket_timeout=PROBE_TIMEOUT_S,
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return str(error) or type(error).__name__
    finally:
        client.close()
    return None


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def create_postgres_database(name: str) -> None:
    """(Re)create an empty PostgreSQL database called ``name``."""
    with postgres_admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_postgres_database(name: str) -> None:
    """Drop ``name``, disconnecting whoever is still connected."""
    with postgres_admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: The system's Chromium and its driver (Debian packages ``chromium`` and ``chromium-driver``).
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def require_chromium() -> None:
    """Skip the calling test (fail it in CI) unless headless Chromium and chromedriver exist."""
    import shutil

    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not installed: apt-get install chromium chromium-driver"
        )
