"""Tables that are never cut: fitted to a terminal, printed whole into a pipe or a file."""

from __future__ import annotations

import sys

from rich.console import Console

from api_cli.output import VisibleConsole, stdout

#: Wide enough for any table trainq prints: a pipe gets each row on one line, whole.
_PIPE_WIDTH_CHARS = 10_000


def unclipped_console() -> Console:
    """The console to print a table on: stdout's in a terminal, else one without a width limit.

    Rich fits tables to the console width (80 columns when stdout is a pipe) and cuts cells
    that do not fit; piped output must never be cut, because scripts grep it.
    """
    if stdout.is_terminal:
        return stdout
    return VisibleConsole(
        file=sys.stdout, width=_PIPE_WIDTH_CHARS, soft_wrap=True, color_system=None, emoji=False
    )
