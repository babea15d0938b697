"""The database server's clock, as SQL: every time that decides who owns a job is read from it.

Workers run on many machines and their clocks disagree. A worker whose clock runs ahead would see
another worker's fresh lease as expired and take a live run; one that runs behind would keep a
dead run for too long. So a lease's end is written as the server's ``now`` plus the TTL, and every
comparison against it (claim, requeue, redispatch) reads the same clock (as Optuna's heartbeats
compare ``func.now()`` on the server).

PostgreSQL: ``now()``, the start of the transaction, not ``clock_timestamp()``. Every time one
transaction writes (a run's ``finished_at``, its attempt's ``ended_at``) is then the same instant;
transactions here are short, and where one waits for a row lock its ``now`` is a little early,
which only shortens the lease it writes and delays a requeue it judges: the safe direction both
times. SQLite: the process's own clock (SQLite is embedded and on local disk only, so every
process that opens the file shares the host's clock), written as ``YYYY-MM-DD HH:MM:SS.ffffff``,
the text SQLAlchemy stores for ``UTCDateTime`` there, so that comparisons of the text are
comparisons of the times.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from storage.column_types import UTCDateTime

#: SQLite's ``strftime`` gives milliseconds (``%f`` is ``SS.SSS``); three zeros make the six
#: digits SQLAlchemy writes, so stored and computed times compare as text.
_SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now'{modifier}) || '000')"


class server_now(FunctionElement[datetime]):  # noqa: N801 - a SQL function, named like one
    """The database server's current time (PostgreSQL: the transaction's start)."""

    type = UTCDateTime()
    inherit_cache = True


class server_time_after(FunctionElement[datetime]):  # noqa: N801 - a SQL function
    """The database server's current time plus ``seconds`` (a lease's end)."""

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, seconds: float) -> None:
        # A bound parameter, not text: one cached statement serves every TTL.
        super().__init__(literal(float(seconds), Float()))


def _only_argument(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = element.clauses
    return compiler.process(argument, **kw)


@compiles(server_now, "postgresql")
def _now_postgresql(element: server_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "now()"


@compiles(server_now, "sqlite")
def _now_sqlite(element: server_now, compiler: SQLCompiler, **kw: Any) -> str:
    return _SQLITE_NOW.format(modifier="")


@compiles(server_time_after, "postgresql")
def _after_postgresql(element: server_time_after, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(now() + make_interval(secs => {_only_argument(element, compiler, **kw)}))"


@compiles(server_time_after, "sqlite")
def _after_sqlite(element: server_time_after, compiler: SQLCompiler, **kw: Any) -> str:
    # A modifier such as '+30.000000 seconds': SQLite takes fractional seconds there.
    seconds = _only_argument(element, compiler, **kw)
    return _SQLITE_NOW.format(modifier=f", printf('%+.6f seconds', {seconds})")
