"""When the reader of trainq's output goes away (``trainq metrics 1 --format csv | head -1``).

Typer (its vendored click) catches the ``BrokenPipeError`` of a write to a closed pipe and exits
1 without a word, so a script under ``set -o pipefail`` could not tell a cut-short listing from a
failed command. trainq ends such a command as a SIGPIPE would: exit code 141
(``ExitCode.OUTPUT_CLOSED``), nothing printed, stdout pointed at /dev/null so that Python's own
flush at exit does not fail again. The embedded ``trainq train`` does the same after keeping its
run's work (``api_cli.embedded.output_closed``).
"""

from __future__ import annotations

import os
import select
import sys
from typing import Any

import typer

from api_cli.exit_codes import ExitCode
from api_cli.help_format import TrainqGroup


def closed_pipes_to_devnull() -> bool:
    """Point stdout and stderr at /dev/null where they are pipes with no reader left, so that no
    later write (Python's own flush at exit included) fails again.

    Returns:
        Whether either of them was such a pipe.
    """
    found = False
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            descriptor = stream.fileno() if stream is not None else -1
            poller = select.poll()
            poller.register(descriptor, select.POLLOUT)
            closed = any(events & select.POLLERR for _, events in poller.poll(0))
        except (OSError, ValueError):  # no descriptor (a test runner's stream)
            continue
        if closed:
            found = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, descriptor)
            os.close(devnull)
    return found


class OutputClosedGroup(TrainqGroup):
    """The top-level group: a command whose output's reader went away exits 141, silently."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; a broken pipe on stdout or stderr ends it with exit code 141. A
        ``BrokenPipeError`` of anything else (a socket) is left to the usual error handling."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            if not closed_pipes_to_devnull():
                raise
            raise typer.Exit(ExitCode.OUTPUT_CLOSED) from None
