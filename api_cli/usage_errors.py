"""Click's usage errors (a missing argument, ``--limit x``, an unknown option or command) in
trainq's own one-line style: ``error: ...`` on stderr and where the help is, exit code 2.

Typer would draw them as a boxed panel under a usage line, beside trainq's ``error:`` lines for
every other mistake: two styles for one kind of message. ``api_cli.main`` runs the app with
``standalone_mode=False`` so that these errors reach it, and prints them here. Typer 0.29
vendors click as ``typer._click``, whose exception classes are not re-exported (except
``BadParameter``): ``docs/internals.md``, entry 9.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.markup import escape
from typer._click.exceptions import BadParameter, ClickException, MissingParameter, UsageError

from api_cli.output import say, stderr, visible
from storage.redaction import excerpt

#: Typer checks option values with pydantic; its wording, and trainq's for the same thing.
_PLAIN_WORDS = (
    (re.compile(r"^Input should be a valid integer\b.*$"), "must be a whole number"),
    (re.compile(r"^Input should be a valid number\b.*$"), "must be a number"),
    (re.compile(r"^Input should be greater than or equal to (\S+)$"), r"must be at least \1"),
    (re.compile(r"^Input should be less than or equal to (\S+)$"), r"must be at most \1"),
    (re.compile(r"^Input should be (.+)$"), r"must be \1"),
    (re.compile(r"^Value error, (.+)$"), r"\1"),
)


def usage_error_line(error: ClickException) -> str:
    """``--limit: must be a whole number, got 'x'. See `trainq runs list --help```.

    A bad value names the option (or argument) and what it must be, in trainq's words rather
    than pydantic's, and what was typed; other usage errors keep click's message (first letter
    lowered). A usage error ends with the command whose help says more.
    """
    missing = isinstance(error, MissingParameter)  # a BadParameter with nothing typed
    if isinstance(error, BadParameter) and not missing and error.param is not None:
        message = f"{_parameter_name(error.param)}: {_bad_value(error)}"
    else:
        message = error.format_message().strip()
        message = message[:1].lower() + message[1:]
    message = visible(message, one_line=True)
    context = getattr(error, "ctx", None)
    if not isinstance(error, UsageError):
        return message.rstrip(".")
    # Click's parser raises some (an option without its value) before it has a context.
    path = context.command_path if context is not None else command_path(sys.argv[1:])
    stop = "" if message.endswith((".", "?")) else "."
    return f"{message}{stop} See `{path} --help`"


def command_path(args: list[str]) -> str:
    """``trainq runs list`` for ``args`` ``["runs", "list", "--limit"]``: the command words they
    start with, as trainq's command tree knows them."""
    from typer.main import get_command

    from api_cli.main import app

    command, path = get_command(app), ["trainq"]
    for arg in args:
        if arg == "--debug":
            continue
        subcommands = getattr(command, "commands", {})
        if arg not in subcommands:
            break
        command = subcommands[arg]
        path.append(arg)
    return " ".join(path)


def _parameter_name(param: Any) -> str:
    """``--lr/--learning-rate`` for an option, ``RUN_ID`` for an argument (from Typer's own
    ``'--lr' / '--learning-rate'``)."""
    return str(param.get_error_hint()).replace("'", "").replace(" / ", "/")


def _bad_value(error: BadParameter) -> str:
    said = error.message.strip().rstrip(".")
    for pattern, words in _PLAIN_WORDS:
        if pattern.match(said):
            said = pattern.sub(words, said)
            break
    typed = _typed_value(error)
    if typed is None or not said.startswith("must be"):
        return said
    return f"{said}, got {excerpt(typed)}"


def _typed_value(error: BadParameter) -> str | None:
    """What the user typed, where pydantic kept it (Typer raises from its ValidationError)."""
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    if not callable(errors):
        return None
    try:
        typed = errors()[0].get("input")
    except (IndexError, TypeError, AttributeError):
        return None
    return typed if isinstance(typed, str) else None


def report_usage_error(error: ClickException) -> int:
    """Print ``error`` as trainq prints its errors; return the exit code (click's: 2 for usage).

    A group called without a command (``trainq runs``) has printed its help already: nothing
    more is said.
    """
    if type(error).__name__ != "NoArgsIsHelpError":  # click >= 8.2; the help is its message
        say(f"[red]error:[/] {escape(usage_error_line(error))}")
    return error.exit_code


def report_abort() -> int:
    """A prompt that met the end of its input (or Ctrl-D): say so; exit 1 as click does."""
    stderr.print("[yellow]aborted[/]")
    return 1
