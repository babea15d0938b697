"""``trainq db``: schema management and integrity checks."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import Format, print_json, print_table, stdout
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage.integrity import IntegrityReport

app = typer.Typer(help="Database schema and integrity.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Create or migrate the schema to this version of trainq (safe to run repeatedly).

    Example: TRAINQ_DATABASE_URL=postgresql+psycopg://trainq@db/trainq trainq db upgrade
    """
    from api_cli.state import STATE
    from storage import Database

    database = Database(STATE.settings.database_url)
    database.upgrade()
    stdout.print(f"schema is up to date on {database.url}")


@app.command("check")
def check(
    output_format: Annotated[
        Format, typer.Option("--format", help="table or json.")
    ] = Format.TABLE,
) -> None:
    """Check the database file's pages, every weight blob's checksum and every metric chunk.

    Exits 0 when nothing is damaged and 65 when something is (each problem is listed). It only
    reads, so it also works on a read-only TRAINQ_HOME and while runs are training.

    Example: trainq db check --format json
    """
    from api_cli.state import STATE
    from storage import Database
    from storage.integrity import check_database

    if output_format is Format.CSV:
        raise InvalidConfigError("--format csv is not available here; use table or json")
    report = check_database(Database(STATE.settings.database_url))
    if output_format is Format.JSON:
        print_json(
            {
                "database": report.database,
                "healthy": report.healthy,
                "file": report.file_check,
                "weights_checked": report.weights_checked,
                "metric_chunks_checked": report.metric_chunks_checked,
                "problems": [asdict(problem) for problem in report.problems],
            }
        )
    else:
        _print_report(report)
    if not report.healthy:
        raise typer.Exit(ExitCode.DATA_ERROR)


def _print_report(report: IntegrityReport) -> None:
    stdout.print(
        f"{report.database}: file {report.file_check}; {report.weights_checked} weight blobs "
        f"and {report.metric_chunks_checked} metric chunks checked",
        highlight=False,
    )
    if report.healthy:
        stdout.print("[green]no problems found[/]")
        return
    print_table(
        f"{len(report.problems)} problem{'s' if len(report.problems) > 1 else ''}",
        ("what", "run", "problem"),
        [(problem.what, problem.run_id, problem.detail) for problem in report.problems],
    )
