"""Messages about an embedded job (interrupted, stopped early, output closed, storage failure)
wrap at words on a terminal, as every other trainq message does, and stay one line in a log; a
failed run's error is said once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from api_cli import embedded
from api_cli.exit_codes import ExitCode
from api_cli.output import VisibleConsole
from tests.cli.conftest import python_in, trainq_in

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


def test_a_failed_embedded_run_says_why_once(tmp_path: Path) -> None:
    # The job's own log line ("run 1 failed: ...", for a worker's log) reached stderr through
    # Python's last resort, then the command reported the same failure.
    result = trainq_in(tmp_path, "train", "--lr", "100", "--l2", "1", "--steps", "300")
    assert result.returncode == ExitCode.RUN_FAILED, result.stderr
    said = result.stdout + result.stderr
    assert said.count("loss became inf") == 1, said


def test_the_jobs_other_warnings_still_reach_stderr(tmp_path: Path) -> None:
    probe = (
        "import logging\n"
        "from api_cli.embedded import job_log_to_stderr\n"
        "from worker.claimed_job import JOB_OUTCOME\n"
        "job_log_to_stderr(); job_log_to_stderr()\n"
        "logging.getLogger('worker.jobs').warning('run 1: compile cache unusable')\n"
        "logging.getLogger('worker.claimed_job').error('run 1 failed', extra={JOB_OUTCOME: True})\n"
        "logging.getLogger('worker.jobs').info('not a warning')\n"
    )
    result = python_in(tmp_path, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "run 1: compile cache unusable\n"
