"""Every `--help` at 80 columns: plain value names, whole sentences, nothing that does not exist."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import click
import pytest
import typer.main
from typer.testing import CliRunner

from api_cli.main import app

ROOT = typer.main.get_command(app)
WIDTH_CHARS = 80
#: Typer's rendering of Python types, and Typer's `{name}` for required arguments.
ARTEFACTS = re.compile(r"<(bool|int|float|list|text|str|path|file)|\{[a-z_]+\}")
#: `trainq WORD [WORD]` where the first word is a command, not prose ("this trainq ships").
MENTIONED_COMMAND = re.compile(r"(?<!this )(?<![\w/@.-])trainq ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
MENTIONED_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: Lines that start an example: they must fit on one line, not wrap onto the next.
EXAMPLE_START = re.compile(r"^ {1,3}(Example: |Examples?:$|trainq |TRAINQ_\w+=)")
#: evaluate.py is being rewritten in parallel; its examples are its own.
WRAPPED_EXAMPLES_ELSEWHERE = {("eval",)}


def command_tree(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_tree(sub, (*path, name))


COMMANDS = dict(command_tree(ROOT))
ALL_OPTIONS = {
    option
    for command in COMMANDS.values()
    for param in command.params
    for option in (*param.opts, *param.secondary_opts)
} | {"--help"}


def rendered_help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": str(WIDTH_CHARS)}, terminal_width=WIDTH_CHARS
    )
    assert result.exit_code == 0, result.output
    return result.output


def options_of(path: tuple[str, ...]) -> set[str]:
    params = COMMANDS[path].params
    return {option for param in params for option in (*param.opts, *param.secondary_opts)}


def mentioned_path(first: str, second: str | None) -> tuple[str, ...]:
    command = COMMANDS.get((first,))
    if command is not None and hasattr(command, "commands") and second is not None:
        return (first, second)
    return (first,)


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(("trainq", *path)))
def test_help_shows_plain_value_names_and_fits_80_columns(path: tuple[str, ...]) -> None:
    shown = rendered_help(path)
    assert not ARTEFACTS.findall(shown), shown
    assert "…" not in shown, f"a cut help text:\n{shown}"
    assert max(len(line) for line in shown.splitlines()) <= WIDTH_CHARS, shown
    if path in WRAPPED_EXAMPLES_ELSEWHERE:
        return
    lines = shown.splitlines()
    for line, following in itertools.pairwise(lines):
        if EXAMPLE_START.match(line):
            assert not following.strip(), f"an example wraps at 80 columns:\n{line}\n{following}"


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(("trainq", *path)))
def test_help_mentions_only_commands_and_options_that_exist(path: tuple[str, ...]) -> None:
    for line in " ".join(rendered_help(path).split("\n\n")).splitlines():
        example = MENTIONED_COMMAND.search(line)
        for match in MENTIONED_COMMAND.finditer(line):
            mentioned = mentioned_path(*match.groups())
            assert mentioned in COMMANDS, f"`trainq {' '.join(mentioned)}` does not exist: {line}"
        known = ALL_OPTIONS
        if example is not None and line.lstrip().startswith(("trainq", "Example")):
            known = options_of(mentioned_path(*example.groups())) | {"--help"}
        for option in MENTIONED_OPTION.findall(line):
            assert option in known, f"{option} is no option here: {line}"


def test_worker_help_states_celerys_default_node_name() -> None:
    assert "celery@HOST" in " ".join(rendered_help(("worker",)).split())


#: An example, as every help gives one: `Example: trainq ...` or an `Examples:` paragraph.
EXAMPLE_HEADING = re.compile(r"^\s*Examples?:", re.MULTILINE)
#: reST a reader of `--help` would see as stray marks: ``literal``, :role:`x`, `::`, directives.
REST_MARKUP = re.compile(r"``|:[a-z]+:`|::\s*$|^\s*\.\. [a-z]+::", re.MULTILINE)


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(("trainq", *path)))
def test_every_help_has_an_example_of_its_own_command(path: tuple[str, ...]) -> None:
    name = " ".join(("trainq", *path))
    shown = rendered_help(path)
    heading = EXAMPLE_HEADING.search(shown)
    assert heading is not None, f"`{name} --help` has no example: add 'Example: {name} ...'"
    examples = " ".join(shown[heading.start() :].split())
    assert f"{name} " in examples or examples.endswith(name), (
        f"`{name} --help` has examples, but none of `{name}` itself"
    )


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(("trainq", *path)))
def test_no_help_shows_rest_markup(path: tuple[str, ...]) -> None:
    marks = REST_MARKUP.findall(rendered_help(path))
    assert not marks, f"`{' '.join(('trainq', *path))} --help` shows reST markup: {marks}"


def test_sweep_start_help_shows_a_small_sweep_file_and_where_every_key_is() -> None:
    shown = rendered_help(("sweep", "start"))
    assert "docs/sweep-file.md" in " ".join(shown.split())
    assert "  parameters:" in shown and "lr:    {distribution: log_uniform" in shown
