"""``trainq db``: schema management and integrity checks."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from api_cli.exit_codes import ExitCode
from api_cli.help_format import TrainqTyper
from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    literal,
    print_csv,
    print_json,
    print_table,
    stdout,
    tell,
)

if TYPE_CHECKING:
    from storage.integrity import IntegrityReport

#: The columns of a problem in ``db check``'s table and CSV, named as in its JSON.
PROBLEM_HEADER = ("what", "detail", "run_id", "step")

app = TrainqTyper(
    help="Database schema and integrity.",
    no_args_is_help=True,
    epilog="Examples:\n\n  trainq db upgrade\n\n  trainq db current\n\n  trainq db check",
)


@app.command("upgrade")
def upgrade() -> None:
    """Create or migrate the schema to this version of trainq (safe to run repeatedly).

    Examples:

      trainq db upgrade

      TRAINQ_DATABASE_URL=postgresql+psycopg://trainq@db/trainq trainq db upgrade
    """
    from api_cli.state import STATE
    from storage import Database

    database = Database(STATE.settings.database_url)
    before, after = database.upgrade()
    head = ", ".join(after.current)
    if not before.current:
        from storage.models import Base

        tables = ", ".join(sorted(Base.metadata.tables))
        stdout.print(
            f"created the trainq schema on {literal(database.url)} at revision {head}: "
            f"tables {tables}",
            highlight=False,
        )
    elif before.current == after.current:
        stdout.print(f"{literal(database.url)} is already at revision {head} (head); nothing to do")
    else:
        stdout.print(
            f"upgraded {literal(database.url)} from revision {', '.join(before.current)} to {head}",
            highlight=False,
        )


@app.command("current")
def current(
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Show the database's schema revision and whether it is this trainq's newest (head).

    Exits 0 when the schema is at head, 3 when it needs `trainq db upgrade` (or is newer than
    this trainq). Plain `alembic current`, run in the project, says the same.

    Example: trainq db current --format json
    """
    output_format = chosen_format(output_format, json_output)
    from api_cli.state import STATE
    from storage import Database

    database = Database(STATE.settings.database_url)
    state = database.schema()
    record = {
        "database": database.url,
        "current": list(state.current),
        "head": list(state.head),
        "up_to_date": state.up_to_date,
    }
    if output_format is Format.JSON:
        print_json(record)
    elif output_format is Format.CSV:
        print_csv(tuple(record), [tuple(record.values())])
    else:
        found = ", ".join(state.current) or "none (no trainq schema yet)"
        verdict = "up to date" if state.up_to_date else "run `trainq db upgrade`"
        if state.newer_than_code:
            verdict = "newer than this trainq: upgrade trainq"
        stdout.print(f"database: {literal(database.url)}", highlight=False, soft_wrap=True)
        stdout.print(f"revision {found} (head {', '.join(state.head)}): {verdict}")
    if not state.up_to_date:
        raise typer.Exit(ExitCode.INVALID_STATE)


@app.command("history")
def history(
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """List the schema migrations this trainq ships, newest first.

    Example: trainq db history
    """
    output_format = chosen_format(output_format, json_output)
    from storage.schema import packaged_history

    revisions = packaged_history()
    rows = [(r.revision, r.down_revision or "", r.message) for r in revisions]
    if output_format is Format.JSON:
        print_json([asdict(revision) for revision in revisions])
    elif output_format is Format.CSV:
        print_csv(("revision", "down_revision", "message"), rows)
    else:
        print_table(
            "schema migrations", ("revision", "down_revision", "message"), rows, wrap=("message",)
        )


@app.command("check")
def check(
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Check the database file's pages, every weight blob's checksum and every metric chunk.

    Exits 0 when nothing is damaged and 65 when something is (each problem is listed; CSV has
    one line per problem). It only reads, so it also works on a read-only TRAINQ_HOME and while
    runs are training.

    Example: trainq db check --format json
    """
    output_format = chosen_format(output_format, json_output)
    from api_cli.state import STATE
    from storage import Database
    from storage.integrity import check_database

    report = check_database(Database(STATE.settings.database_url))
    if output_format is Format.CSV:  # one line per problem: the header alone when healthy
        print_csv(PROBLEM_HEADER, [tuple(asdict(problem).values()) for problem in report.problems])
    elif output_format is Format.JSON:
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


@app.command("vacuum")
def vacuum() -> None:
    """Give the space of deleted runs back to the file system (SQLite's VACUUM).

    Deleting runs frees their pages inside the SQLite file, which keeps its size until this
    rewrites it (it needs about as much free disk again, and waits for writers). PostgreSQL
    reuses the space of deleted rows by itself (autovacuum): nothing to do there.

    Example: trainq runs delete 3 4 --yes && trainq db vacuum
    """
    from api_cli.dataset_view import human_bytes
    from api_cli.state import STATE

    reclaimed = STATE.repository.reclaim_space()
    if reclaimed is None:
        stdout.print("PostgreSQL reuses the space of deleted rows by itself (autovacuum)")
    else:
        stdout.print(f"VACUUM: the SQLite file shrank by {human_bytes(reclaimed)}")


def _print_report(report: IntegrityReport) -> None:
    tell(
        f"{literal(report.database)}: file {report.file_check}; "
        f"{report.weights_checked} weight blobs and {report.metric_chunks_checked} metric "
        "chunks checked"
    )
    if report.healthy:
        stdout.print("[green]no problems found[/]")
        return
    print_table(
        f"{len(report.problems)} problem{'s' if len(report.problems) > 1 else ''}",
        PROBLEM_HEADER,
        [tuple(asdict(problem).values()) for problem in report.problems],
    )
