"""Messages about an embedded job (interrupted, stopped early, output closed, storage failure)
wrap at words on a terminal, as every other trainq message does, and stay one line in a log."""

from __future__ import annotations

import io

import pytest

from api_cli import embedded
from api_cli.output import VisibleConsole

MESSAGE = (
    "[yellow]run 1 stopped at step 46,000 before it finished; it keeps its checkpoints — "
    "continue with `trainq resume 1`[/]"
)


def told(monkeypatch: pytest.MonkeyPatch, *, terminal: bool) -> str:
    out = io.StringIO()
    console = VisibleConsole(
        file=out, force_terminal=terminal, width=80, soft_wrap=True, color_system=None
    )
    monkeypatch.setattr(embedded, "progress_console", lambda: console)
    embedded._tell(MESSAGE)
    return out.getvalue()


def test_on_a_terminal_a_job_message_breaks_between_words(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line.rstrip() for line in told(monkeypatch, terminal=True).splitlines()]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    assert lines[0].endswith("checkpoints —") and lines[1] == "continue with `trainq resume 1`"


def test_in_a_log_a_job_message_stays_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert told(monkeypatch, terminal=False).splitlines() == [
        "run 1 stopped at step 46,000 before it finished; it keeps its checkpoints — "
        "continue with `trainq resume 1`"
    ]
