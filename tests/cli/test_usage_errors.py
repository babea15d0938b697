"""A usage error (a missing argument, a bad number, an unknown option) reads like every other
trainq error: one `error:` line naming what was typed and where the help is, exit code 2; no
boxed panel, no pydantic wording."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Trainq

#: What Typer printed before: a box, a usage line, and pydantic's sentences.
FOREIGN_STYLE = ("╭", "╰", "Usage:", "Try '", "Input should be", "Value error", "Invalid value")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("runs", "show"), "error: missing argument 'RUN_ID'. See `"),
        (("runs", "show", "abc"), "error: RUN_ID: must be a whole number, got 'abc'. See `"),
        (("runs", "list", "--limit", "0"), "error: --limit: must be at least 1, got '0'. See `"),
        (("train", "--lr", "fast"), "error: --lr/--learning-rate: must be a number, got 'fast'."),
        (("runs", "list", "--format", "xml"), "error: --format: 'xml' is not one of 'table'"),
        (("train", "--bogus"), "error: no such option: --bogus. See `"),
        (("runs", "lst"), "error: no such command 'lst'. Did you mean 'list'? See `"),
    ],
    ids=["missing-argument", "bad-int", "out-of-range", "bad-float", "bad-choice", "option", "cmd"],
)
def test_a_usage_error_is_one_error_line_with_where_the_help_is_and_exit_2(
    trainq: Trainq, args: tuple[str, ...], line: str
) -> None:
    result = trainq(*args)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(line), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not [mark for mark in FOREIGN_STYLE if mark in result.stderr], result.stderr


def test_the_help_a_usage_error_points_at_is_the_commands_own(trainq: Trainq) -> None:
    result = trainq("runs", "show", "abc")

    assert result.stderr.rstrip().endswith("runs show --help`")


@pytest.mark.parametrize(
    ("args", "help_of"),
    [
        (("train", "--steps"), "trainq train"),
        (("--debug", "runs", "list", "--limit"), "trainq runs list"),
        (("runs", "show", "3", "--format"), "trainq runs show"),
    ],
)
def test_an_option_without_its_value_points_at_the_commands_help(
    trainq: Trainq, args: tuple[str, ...], help_of: str
) -> None:
    # Click raises these before it has a context: the command is read from what was typed.
    result = trainq(*args)

    assert result.returncode == 2
    option = next(arg for arg in reversed(args) if arg.startswith("--"))
    assert result.stderr.strip() == (
        f"error: option '{option}' requires an argument. See `{help_of} --help`"
    )


def test_a_group_without_a_command_still_shows_its_help(trainq: Trainq) -> None:
    result = trainq("runs")

    assert result.returncode == 2
    assert "trainq runs list" in result.stdout + result.stderr
    assert "error:" not in result.stderr
