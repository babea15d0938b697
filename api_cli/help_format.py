"""How ``--help`` names option values: ``INTEGER``, ``table|json|csv``, nothing for a flag.

Typer 0.29 writes Python types into help (``<bool>``, ``<list[str]>``, ``<int range>``) and
required arguments as ``{run_id}`` on the usage line. Rather than give every option a metavar by
hand, every ``trainq`` command is built through :class:`TrainqTyper`, whose command classes turn
their parameters into the plain kinds below: one place for the whole command tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

#: Typer's type labels (inside ``<...>``) and the words help shows instead.
_PLAIN_TYPES = {
    "bool": "",
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "FLOAT",
    "float range": "FLOAT",
    "str": "TEXT",
    "path": "PATH",
    "file": "FILE",
    "datetime": "DATETIME",
}


def plain_type(typer_label: str) -> str:
    """``<list[int range]>`` → ``INTEGER``; ``<table|json|csv>`` → ``table|json|csv``."""
    label = typer_label.strip("<>")
    if label.startswith("list[") and label.endswith("]"):
        label = label[len("list[") : -1]  # repeatable: the help text says so
    return _PLAIN_TYPES.get(label, label)


def plain_range(low: float | None, high: float | None) -> str | None:
    """``1..100``, ``>=1``: a number range as help shows it (Typer writes ``1<=x<=100``)."""
    if low is None and high is None:
        return None
    if low is None:
        return f"<={high}"
    if high is None:
        return f">={low}"
    return f"{low}..{high}"


class _PlainOption(TyperOption):
    def _get_number_range_help_str(self) -> str | None:
        if self.count and self.min == 0 and self.max is None:
            return None
        return plain_range(self.min, self.max)

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return ""
        return plain_type(self.display_type(ctx))


class _PlainArgument(TyperArgument):
    @property
    def display_name_raw(self) -> str:
        return self.metavar if self.metavar is not None else self.name.upper()

    def _get_number_range_help_str(self) -> str | None:
        return plain_range(self.min, self.max)

    def display_type_rich(self, ctx: Any) -> str | None:
        return plain_type(self.display_type(ctx))

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return [name if self.required else f"[{name}]"]


def _make_plain(params: list[Any]) -> list[Any]:
    # The parameters are built by Typer from the function signatures (``--help`` and the
    # completion options apart from the others); giving them a subclass that only overrides how
    # they are displayed keeps everything else Typer's own.
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = _PlainOption
        elif type(param) is TyperArgument:
            param.__class__ = _PlainArgument
    return params


def unwrapped(text: str | None) -> str | None:
    """Docstring paragraphs as one line each, for the terminal to wrap at its own width.

    Rich help keeps single newlines, so a docstring wrapped at 100 columns shows broken lines at
    80. Paragraphs (separated by a blank line) stay; an indented line (an example) stays alone.
    """
    if text is None:
        return None
    paragraphs = text.strip("\n").split("\n\n")
    return "\n\n".join(
        paragraph if paragraph.startswith((" ", "\b")) else " ".join(paragraph.split("\n"))
        for paragraph in paragraphs
    )


def first_sentence(text: str | None) -> str | None:
    """The first sentence of a help text: what a command list shows of it."""
    if text is None:
        return None
    paragraph = text.split("\n\n")[0]
    head, separator, _ = paragraph.partition(". ")
    return f"{head}." if separator else paragraph


class TrainqCommand(TyperCommand):
    """A Typer command whose help names values plainly (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = unwrapped(self.help)
        self.epilog = unwrapped(self.epilog)
        self.short_help = self.short_help or first_sentence(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, displayed plainly."""
        return _make_plain(super().get_params(ctx))


class TrainqGroup(TyperGroup):
    """A Typer group whose help names values plainly (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = unwrapped(self.help)
        self.epilog = unwrapped(self.epilog)

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, displayed plainly."""
        return _make_plain(super().get_params(ctx))


class TrainqTyper(typer.Typer):
    """``typer.Typer`` whose groups and commands are :class:`TrainqGroup`/:class:`TrainqCommand`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", TrainqGroup)
        super().__init__(**kwargs)

    def command(
        self, *args: Any, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        """Register a command, as ``typer.Typer.command``, with :class:`TrainqCommand`."""
        kwargs.setdefault("cls", TrainqCommand)
        return super().command(*args, **kwargs)
