"""How trainq connects to its databases, shared by the engines (``storage.engine``) and the quick
read path (``storage.quick_reads``); free of SQLAlchemy."""

from __future__ import annotations

from typing import Any

#: How long SQLite waits for another writer's lock before failing (reliability.md: 30 s).
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: libpq connection parameters: fail fast on a dead server, notice a silent partition.
POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    # Bound stuck queries and locks held by paused workers (reliability.md, PG role settings);
    # set per connection so they hold even when the role was created without them.
    "options": (
        "-c statement_timeout=30000 -c lock_timeout=5000 "
        "-c idle_in_transaction_session_timeout=60000"
    ),
}


def postgres_connect_args(*, read_only: bool = False) -> dict[str, Any]:
    """A copy of :data:`POSTGRES_CONNECT_ARGS`; ``read_only``: every transaction refuses writes."""
    arguments = dict(POSTGRES_CONNECT_ARGS)
    if read_only:
        arguments["options"] += " -c default_transaction_read_only=on"
    return arguments
