"""The ``trainq`` command: one sub-app per noun, errors on stderr with named exit codes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from api_cli.closed_output import OutputClosedGroup
from api_cli.commands import (
    cancel,
    compare,
    dashboard,
    data,
    db,
    evals,
    evaluate,
    export,
    exporter,
    gc,
    metrics,
    plot,
    predict,
    resume,
    runs,
    status,
    sweep,
    train,
    worker,
)
from api_cli.exit_codes import ExitCode, exit_code_for
from api_cli.help_format import TrainqTyper
from api_cli.output import say, stderr
from api_cli.state import STATE

app = TrainqTyper(
    cls=OutputClosedGroup,
    name="trainq",
    help="trainq: a training queue for the seed's logistic regression, on Fashion-MNIST or on "
    "a dataset of your own (`trainq data`).\n\n"
    "Embedded by default (jobs run in this process, SQLite under TRAINQ_HOME); set "
    "TRAINQ_BROKER_URL and TRAINQ_DATABASE_URL to use a cluster of `trainq worker` processes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    epilog="Examples:\n\n  trainq train --steps 2000\n\n  trainq runs list\n\n  trainq status",
)


def _print_version(requested: bool) -> None:
    if requested:
        from importlib.metadata import version

        typer.echo(f"trainq {version('trainq')}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options."""
    STATE.debug = debug


app.command(epilog=train.EPILOG)(train.train)
app.command("eval", epilog=evaluate.EPILOG)(evaluate.evaluate)
app.add_typer(evals.app, name="evals")
app.add_typer(runs.app, name="runs")
app.command()(metrics.metrics)
app.command()(cancel.cancel)
app.command()(resume.resume)
app.command()(export.export)
app.command()(predict.predict)
app.command()(worker.worker)
app.add_typer(db.app, name="db")
app.command()(status.status)
app.command(epilog=compare.EPILOG)(compare.compare)
app.command(epilog=plot.EPILOG)(plot.plot)
app.add_typer(sweep.app, name="sweep")
app.add_typer(data.app, name="data")
app.command(epilog=dashboard.EPILOG)(dashboard.dashboard)
app.command(epilog=exporter.EPILOG)(exporter.exporter)
app.command("gc", epilog=gc.EPILOG)(gc.gc)


def run() -> None:
    """Console-script entry point: maps trainq's errors to exit codes, without tracebacks."""
    try:
        _run()
    except SystemExit as exiting:
        if exiting.code is None or isinstance(exiting.code, int):
            from worker.cluster.process_exit import exit_without_teardown

            # After an embedded `trainq train`: skips about a second of TensorFlow's teardown.
            exit_without_teardown(exiting.code or 0)
        raise


def _run() -> None:
    from rich.markup import escape
    from typer import Abort
    from typer._click.exceptions import ClickException  # entry 9 of docs/internals.md

    from storage.errors import TrainqError
    from storage.redaction import redact

    try:
        # Not standalone: click's usage errors come here, to be said as trainq says its own.
        returned = app(standalone_mode=False)
    except ClickException as exc:
        from api_cli.usage_errors import report_usage_error

        _wait_for_stderr()
        sys.exit(report_usage_error(exc))
    except Abort:
        from api_cli.usage_errors import report_abort

        sys.exit(report_abort())
    except TrainqError as exc:
        _wait_for_stderr()
        if STATE.debug:
            raise
        # Messages may quote a URL from the environment: never print its password.
        # Wrapped at words on a terminal, one line in a log (`say`).
        say(f"[red]error:[/] {escape(redact(str(exc)))}")
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        _wait_for_stderr()
        stderr.print("[yellow]interrupted[/]")
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        _wait_for_stderr()
        if STATE.debug:
            raise
        stderr.print(
            f"[red]internal error:[/] {type(exc).__name__}: {escape(redact(str(exc)))}\n"
            "rerun with --debug for the traceback, and please report it",
            highlight=False,
        )
        sys.exit(ExitCode.INTERNAL)
    # A command's own `typer.Exit(code)` comes back as its code; a command returns None.
    sys.exit(returned if isinstance(returned, int) and not isinstance(returned, bool) else 0)


def _wait_for_stderr() -> None:
    """An embedded `trainq train` imports TensorFlow in a thread with stderr captured (see
    ``worker.training.start_importing``): an error printed before that ends would be lost."""
    training = sys.modules.get("worker.training")
    if training is not None:
        training.wait_for_import()
