"""Printing: tables for people, JSON and CSV for scripts. Errors and progress go to stderr."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

#: Width given to tables written to a pipe or a file: nothing a script greps for may be cut.
PIPE_WIDTH_CHARS = 1_000_000


class Format(StrEnum):
    """Output formats a data command can print."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


#: The ``--format`` option of every data command.
FormatOption = Annotated[Format, typer.Option("--format", help="table, json or csv.")]
#: ``--json``, kept beside ``--format`` on every data command.
JsonShorthand = Annotated[bool, typer.Option("--json", help="Shorthand for --format json.")]


def chosen_format(output_format: Format, json_output: bool) -> Format:
    """The format asked for by ``--format`` and its ``--json`` shorthand.

    Raises:
        InvalidConfigError: (exit 2) ``--json`` with another ``--format``.
    """
    if not json_output:
        return output_format
    if output_format is Format.CSV:
        from worker.errors import InvalidConfigError

        raise InvalidConfigError("--json and --format csv ask for two formats: give one")
    return Format.JSON


def print_fields_csv(data: Mapping[str, Any]) -> None:
    """Print a record as ``field,value`` CSV rows, nested mappings under dotted names
    (``database.runs_by_status.queued``); lists are compact JSON cells."""
    print_csv(("field", "value"), flat_fields(data))


def flat_fields(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}, "c": 2}`` → ``[("a.b", 1), ("c", 2)]``."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flat_fields(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout; non-finite floats become null (JSON has no NaN)."""
    sys.stdout.write(json.dumps(_json_safe(data), indent=2, default=str) + "\n")


def print_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print CSV with ``header`` on stdout; every cell as ``csv_cell`` writes it."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)


def csv_cell(value: Any) -> str:
    """A CSV cell that other tools read back: never a Python repr.

    None is empty, booleans are ``true``/``false``, mappings and lists are compact JSON (as in
    ``--format json``), everything else its plain text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def print_table(
    title: str | None,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    wrap: Collection[str] = (),
) -> None:
    """Print a Rich table on stdout.

    Args:
        title: shown above the table.
        header: the column names.
        rows: the cells, formatted by ``format_cell``.
        wrap: the columns that may wrap onto several lines when the terminal is narrow (free
            text: names, tags, values). The others (ids, statuses, numbers, dates) are never
            wrapped nor cut: a number cut to ``2000…`` is worse than no number.
    """
    # No vertical rules: a run listing fits an 80-column terminal without truncated cells.
    table = Table(
        title=title,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    for name in header:
        table.add_column(name, no_wrap=name not in wrap, overflow="fold")
    for row in rows:
        table.add_row(*(format_cell(value) for value in row))
    table_console().print(table)


def table_console() -> Console:
    """Where tables go: stdout at its terminal's width, or at an unlimited width when piped."""
    if stdout.is_terminal:
        return stdout
    return Console(file=sys.stdout, width=PIPE_WIDTH_CHARS, soft_wrap=True)


def say(message: str) -> None:
    """Print a message for people on stderr: wrapped at words on a terminal, one line in a log."""
    stderr.print(message, soft_wrap=not stderr.is_terminal, highlight=False)


def format_cell(value: Any) -> str:
    """A short human form of a cell value."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        if not value:
            return "-"
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def _json_safe(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Mapping):
        return {str(key): _json_safe(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_json_safe(value) for value in data]
    return data
