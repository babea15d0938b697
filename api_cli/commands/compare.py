"""``trainq compare``: runs side by side — hyperparameters, final metrics, evaluations, speed."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from api_cli.comparison import EVALUATIONS, FINAL, HYPERPARAMETERS, Comparison, compare_runs
from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    cell_text,
    chosen_format,
    print_csv,
    print_json,
    visible,
)
from api_cli.state import STATE
from api_cli.unclipped import unclipped_console

EPILOG = """
Examples:

  trainq compare 3 4 5               # every hyperparameter, differing first

  trainq compare 3 4 5 --diff-only   # only what differs between the runs

  trainq compare 3 4 --format csv > runs.csv
"""


def compare(
    run_ids: Annotated[list[int], typer.Argument(help="Training run ids, one column each.")],
    diff_only: Annotated[
        bool, typer.Option("--diff-only", help="Show only the fields whose values differ.")
    ] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Compare training runs: hyperparameters (those that differ first), final metrics (from
    each run's summary), the newest evaluation per split, and speed.

    JSON keys, CSV columns and table rows use the same names; CSV has one line per run.
    """
    output_format = chosen_format(output_format, json_output)
    client = STATE.client
    runs = client.training_runs(run_ids)
    comparison = compare_runs(
        runs, [client.latest_evaluations(run.id) for run in runs], diff_only=diff_only
    )
    if output_format is Format.JSON:
        print_json({"differing": list(comparison.differing), "runs": list(comparison.runs)})
    elif output_format is Format.CSV:
        print_csv(
            comparison.fields,
            [[csv_cell(run[name]) for name in comparison.fields] for run in comparison.runs],
        )
    else:
        _print_table(comparison)


def csv_cell(value: Any) -> str:
    """A CSV cell: numbers as numbers, nothing as an empty cell, never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return visible(str(value))


def table_cell(name: str, section: str, value: Any) -> str:
    """A table cell: metrics to 4 decimals, hyperparameters with all their significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, float):
        return f"{value:,}" if isinstance(value, int) and name != "run_id" else str(value)
    if not math.isfinite(value):
        return str(value)
    if section == HYPERPARAMETERS:
        return repr(value)  # the shortest text that reads back as the same number
    if name == "steps_per_s":
        return f"{value:,.0f}"
    if name == "duration_s":
        return f"{value:,.2f}"
    if section in (FINAL, EVALUATIONS) and not name.endswith("_checkpoint"):
        return f"{value:.4f}"
    return f"{value:g}"


def _print_table(comparison: Comparison) -> None:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("field", overflow="fold", no_wrap=True)
    for run in comparison.runs:
        table.add_column(f"run {run['run_id']}", overflow="fold")
    previous_section = None
    for name in comparison.fields:
        section = comparison.sections[name]
        if previous_section is not None and section != previous_section:
            table.rows[-1].end_section = True
        previous_section = section
        style = "bold" if name in comparison.differing else None
        table.add_row(
            name,
            *(cell_text(table_cell(name, section, run[name])) for run in comparison.runs),
            style=style,
        )
    if comparison.differing:
        table.caption = "differ: " + ", ".join(comparison.differing)
    unclipped_console().print(table)
