"""``trainq exporter``: serve the queue's numbers to Prometheus (``docs/cluster.md``)."""

from __future__ import annotations

import errno
import signal
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from api_cli.exit_codes import ExitCode
from api_cli.output import say
from api_cli.state import STATE

if TYPE_CHECKING:
    from storage import Repository

#: The census's own reply timeout (``worker.cluster.census``): long enough for loaded workers.
DEFAULT_CENSUS_TIMEOUT_S = 1.0

EPILOG = """
Examples:

  trainq exporter                   # http://127.0.0.1:9808/metrics

  trainq exporter --host 0.0.0.0    # a Prometheus on another machine

Point Prometheus at HOST:9808 (docs/cluster.md, "Prometheus").
"""


def exporter(
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 9808,
    census_timeout: Annotated[
        float,
        typer.Option(
            "--census-timeout",
            min=0.1,
            max=10.0,
            help="Seconds each scrape waits for the workers' answers (a scrape takes about "
            "this long on a cluster; keep it below Prometheus's scrape_timeout).",
        ),
    ] = DEFAULT_CENSUS_TIMEOUT_S,
) -> None:
    """Serve Prometheus metrics at /metrics: jobs by queue and status, queue depth and age, the
    broker's list lengths, queue waits, workers online and busy, steps/s per run and per worker,
    takeovers, hand-backs and failures.

    Every scrape reads the database (read-only) and asks the broker; nothing is counted in this
    process, so any number of exporters agree. Exit code 69 when the address cannot be listened
    on.
    """
    from prometheus_client import CollectorRegistry

    from api_cli.exporter.broker_reading import BrokerProbe
    from api_cli.exporter.collector import TrainqCollector
    from api_cli.exporter.http_server import bind

    settings = STATE.settings
    repository = _read_only_repository()
    broker = None if settings.embedded else BrokerProbe(settings, census_timeout)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TrainqCollector(repository, broker))
    try:
        server = bind(host, port, registry)
    except OSError as error:
        _cannot_listen(host, port, error)
    shown = f"[{host}]" if ":" in host else host
    say(f"trainq exporter: http://{shown}:{port}/metrics; Ctrl-C stops it")
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: the normal way to stop a server
    finally:
        server.server_close()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _read_only_repository() -> Repository:
    """A repository whose connections cannot write, on a schema this trainq reads."""
    from storage import Database, Repository

    # The normal path first: it names an outdated schema or an unreachable database clearly.
    STATE.repository  # noqa: B018
    database = Database(STATE.settings.database_url, read_only=True)
    database.ensure_schema(auto_upgrade=False)
    return Repository(database)


def _cannot_listen(host: str, port: int, error: OSError) -> NoReturn:
    reason = error.strerror or str(error)
    hint = (
        "another program (or another trainq exporter) listens there; pick another --port"
        if error.errno == errno.EADDRINUSE
        else "check --host"
    )
    say(f"[red]error:[/] cannot listen on --host {escape(host)} --port {port}: {reason}; {hint}")
    raise typer.Exit(ExitCode.UNAVAILABLE)
