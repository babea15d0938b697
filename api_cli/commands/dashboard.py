"""``trainq dashboard``: serve the read-only web view (runs, run, sweep, compare, queue)."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from api_cli.exit_codes import ExitCode
from api_cli.output import say
from api_cli.state import STATE

if TYPE_CHECKING:
    from storage import Repository

#: After SIGTERM, how long requests in flight may finish before they are cancelled.
GRACEFUL_STOP_S = 3
#: Open connections and requests at once; more are answered 503 by uvicorn itself.
MAX_CONNECTIONS = 512

EPILOG = """
Examples:

  trainq dashboard                  # http://127.0.0.1:8050/ (this machine)

  trainq dashboard --port 8060

  trainq dashboard --host 0.0.0.0   # every interface: anyone may read
"""


def dashboard(
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8050,
) -> None:
    """Serve a read-only web view of the database: runs (filter, page, live), a run's curves,
    checkpoints and evaluations, sweeps, a comparison of runs, and the queue.

    The same database as every other command, opened read-only.

    Under load it answers 503 with Retry-After rather than queue without end. Ctrl-C or SIGTERM
    stops it within a few seconds. Exit code 69 when the address is taken or cannot be listened
    on.
    """
    import uvicorn

    from api_cli.dashboard.app import create_app

    repository = _read_only_repository()
    listener = _listen(host, port)
    app = create_app(repository, STATE.settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            # SIGTERM: requests still running after this are cancelled and the process exits
            # (their reads run in daemon threads, which do not hold it open).
            timeout_graceful_shutdown=GRACEFUL_STOP_S,
            # A backstop behind the app's own 503s: connections and requests beyond this are
            # answered 503 by uvicorn before any of the app's work starts.
            limit_concurrency=MAX_CONNECTIONS,
        )
    )
    shown = f"[{host}]" if ":" in host else host
    say(f"trainq dashboard: http://{shown}:{port}/ (read-only); Ctrl-C stops it")
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()


def _read_only_repository() -> Repository:
    """A repository whose connections cannot write, on a schema this trainq reads."""
    from storage import Database, Repository

    # The normal path first: it creates the embedded database on a fresh machine (so the page
    # shows "no runs" rather than an error) and names an outdated schema clearly.
    STATE.repository  # noqa: B018
    database = Database(STATE.settings.database_url, read_only=True)
    database.ensure_schema(auto_upgrade=False)
    return Repository(database)


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so a taken port is a clear error, not a server log line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        reason = error.strerror or str(error)
        hint = (
            "another program (or another trainq dashboard) listens there; pick another --port"
            if error.errno == errno.EADDRINUSE
            else "check --host"
        )
        say(
            f"[red]error:[/] cannot listen on --host {escape(host)} --port {port}: {reason}; {hint}"
        )
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    return listener
