"""Printing: tables for people, JSON and CSV for scripts. Errors and progress go to stderr."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    """Output formats a data command can print."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout; non-finite floats become null (JSON has no NaN)."""
    sys.stdout.write(json.dumps(_json_safe(data), indent=2, default=str) + "\n")


def print_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print CSV with ``header`` on stdout."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def print_table(title: str | None, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a Rich table on stdout."""
    # No vertical rules: a run listing fits an 80-column terminal without truncated cells.
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*(format_cell(value) for value in row))
    stdout.print(table)


def format_cell(value: Any) -> str:
    """A short human form of a cell value."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def _json_safe(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Mapping):
        return {str(key): _json_safe(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_json_safe(value) for value in data]
    return data
