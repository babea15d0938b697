"""``trainq db``: schema management."""

from __future__ import annotations

import typer

from api_cli.output import stdout

app = typer.Typer(help="Database schema.", no_args_is_help=True)


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
