"""Printing: tables for people, JSON and CSV for scripts. Errors and progress go to stderr.

Text from users and other hosts (run names, tags, error messages, worker names, paths) reaches
the terminal only through :func:`visible`: a control character is shown as an escape such as
``\\x1b``, so a tag like ``ansi=\\e[2J`` cannot clear the screen or move the cursor. Every console
here applies it to every string it prints; table cells are never read as Rich markup, and
:func:`literal` escapes text put into a message that has markup of its own. JSON stays exact
(its own escaping covers control characters); CSV cells get :func:`visible` too, since a CSV
file is read by people and spreadsheets as often as by scripts (``--format json`` is exact).
"""

from __future__ import annotations

import csv
import errno
import json
import math
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, HighlighterType, JustifyMethod, OverflowMethod
from rich.markup import escape
from rich.style import Style
from rich.table import Table
from rich.text import Text


def _escape_of(code: int) -> str:
    named = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
    if code in named:
        return named[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: Characters a terminal acts on rather than shows: C0 controls (ESC starts every cursor, colour
#: and clear-screen sequence), DEL, C1 controls (0x9b is a one-byte CSI), line and paragraph
#: separators, and the bidirectional marks and overrides that reorder what a line appears to say.
_ACTED_ON = (
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    *range(0x2028, 0x202F),
    *range(0x2066, 0x206A),
)
_ONE_LINE = {code: _escape_of(code) for code in _ACTED_ON}
# Messages may have several lines and tabs of their own.
_LINES = {code: text for code, text in _ONE_LINE.items() if code not in (0x09, 0x0A)}


def visible(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\r``, ``\\u202e``).

    Newlines and tabs are kept unless ``one_line`` (a table cell, a value inside a sentence).
    Linear in the length of ``text``.
    """
    return text.translate(_ONE_LINE if one_line else _LINES)


def literal(value: object) -> str:
    """``value`` as text to put inside a message printed with Rich markup: control characters
    shown as escapes (newlines too) and ``[...]`` kept as typed, never read as a style."""
    return escape(visible(str(value), one_line=True))


class VisibleConsole(Console):
    """A Rich console that shows control characters as escapes in every string it prints."""

    def render_str(
        self,
        text: str,
        *,
        style: str | Style = "",
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        emoji: bool | None = None,
        markup: bool | None = None,
        highlight: bool | None = None,
        highlighter: HighlighterType | None = None,
    ) -> Text:
        """Rich's conversion of a string to ``Text``, after :func:`visible`."""
        return super().render_str(
            visible(text),
            style=style,
            justify=justify,
            overflow=overflow,
            emoji=emoji,
            markup=markup,
            highlight=highlight,
            highlighter=highlighter,
        )

    def on_broken_pipe(self) -> None:
        """The reader of this output went away (``| head -1``). Rich would exit 1 on the spot;
        raise instead, so that a command following a job keeps its work
        (``api_cli.submission.keeping_work_if_output_closes``)."""
        raise BrokenPipeError(errno.EPIPE, "the reader of trainq's output went away")


# No emoji codes: a run named ":fire:" is shown as typed.
stdout = VisibleConsole(soft_wrap=True, emoji=False)
stderr = VisibleConsole(stderr=True, soft_wrap=True, emoji=False)

#: Width given to tables written to a pipe or a file: nothing a script greps for may be cut.
PIPE_WIDTH_CHARS = 1_000_000
#: A column that may wrap is given at least this width before the table outgrows the terminal.
WRAP_FLOOR_CHARS = 8


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
        return visible(json.dumps(value, separators=(",", ":"), default=str))
    return visible(str(value))


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
        rows: the cells, formatted by ``format_cell`` (a Rich ``Text`` is kept as it is styled);
            never read as markup.
        wrap: the columns that may wrap onto several lines when the terminal is narrow (free
            text: names, tags, values). The others (ids, statuses, numbers, dates) are never
            wrapped nor cut: a number cut to ``2000…`` is worse than no number.
    """
    # No vertical rules: a run listing fits an 80-column terminal without truncated cells.
    table = Table(
        title=None if title is None else Text(visible(title, one_line=True)),
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    cells = [[cell_text(value) for value in row] for row in rows]
    widths = []
    for index, name in enumerate(header):
        whole = name not in wrap
        widest = max((row[index].cell_len for row in cells if index < len(row)), default=0)
        widths.append(max(widest, len(name)) if whole else min(max(widest, 1), WRAP_FLOOR_CHARS))
        # Rich shrinks even a no-wrap column when the table is too wide: say how wide it is.
        table.add_column(
            name, no_wrap=whole, overflow="fold", min_width=widths[-1] if whole else None
        )
    for row in cells:
        table.add_row(*row)
    console = table_console()
    # Two spaces between columns. Narrower than this, the table is printed at this width and the
    # terminal wraps its lines: a number cut to ``300`` for ``3000`` is worse.
    narrowest = sum(widths) + 2 * (len(widths) - 1)
    if narrowest > console.width:
        table.width = narrowest
    if console.is_terminal:
        console.print(table, crop=False)
        return
    # Piped, every row would be padded with spaces to the widest one (a long summary value
    # padded `trainq runs show | cat` to 89 columns: a blank line after each row at 80).
    with console.capture() as captured:
        console.print(table, crop=False)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()


def cell_text(value: Any) -> Text:
    """A table cell: ``format_cell``'s text, never read as markup; a ``Text`` keeps its style."""
    return value if isinstance(value, Text) else Text(format_cell(value))


def table_console() -> Console:
    """Where tables go: stdout at its terminal's width, or at an unlimited width when piped."""
    if stdout.is_terminal:
        return stdout
    return VisibleConsole(file=sys.stdout, width=PIPE_WIDTH_CHARS, soft_wrap=True, emoji=False)


def say(message: str) -> None:
    """Print a message for people on stderr: wrapped at words on a terminal, one line in a log."""
    stderr.print(message, soft_wrap=not stderr.is_terminal, highlight=False)


def tell(message: str, *, highlight: bool = False) -> None:
    """Print a sentence for people on stdout: wrapped at words on a terminal, one line piped."""
    stdout.print(message, highlight=highlight, soft_wrap=not stdout.is_terminal)


def format_cell(value: Any) -> str:
    """A short human form of a cell value, on one line, control characters shown as escapes."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        if not value:
            return "-"
        return visible(", ".join(f"{key}={item}" for key, item in value.items()), one_line=True)
    return visible(str(value), one_line=True)


def _json_safe(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Mapping):
        return {str(key): _json_safe(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_json_safe(value) for value in data]
    return data
