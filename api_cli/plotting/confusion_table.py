"""A confusion matrix as a labelled table in the terminal (fits 80 columns for 10 classes)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from api_cli.output import visible
from api_cli.unclipped import unclipped_console


def print_confusion(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str
) -> None:
    """Rows are true classes (named), columns predicted classes (numbered, named in the rows)."""
    # A class has at most 6,000 images (train split): 4 digits and one space between columns
    # keep 10 classes within 80 columns.
    table = Table(
        title=Text(visible(title)),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        header_style="bold",
        padding=(0, 0),
    )
    table.add_column("true\\pred.", no_wrap=True)
    for index in range(len(class_names)):
        table.add_column(str(index), justify="right", no_wrap=True, min_width=4)
    table.add_column("recall", justify="right", no_wrap=True)
    for index, (name, row) in enumerate(zip(class_names, confusion, strict=True)):
        total = sum(row)
        recall = f"{row[index] / total:.3f}" if total else "-"
        cells = [
            f"[bold]{count}[/]" if column == index else str(count)
            for column, count in enumerate(row)
        ]
        table.add_row(f"{index} {name}", *cells, recall)
    unclipped_console().print(table)
