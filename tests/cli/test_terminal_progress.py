"""What a person sees at a terminal: an embedded `trainq train` draws its progress bar.

The real command runs in a pseudo-terminal of a given size, as in a terminal window; TensorFlow's
import, which captures file descriptor 2 in a thread meanwhile, must not turn the bar into the
plain lines written for logs.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from api_cli.progress_line import BAR_DONE
from tests.cli.conftest import embedded_env

pytestmark = pytest.mark.slow


def run_in_terminal(env: dict[str, str], columns: int, *args: str) -> tuple[int, str]:
    """Run `trainq ARGS...` with stdin, stdout and stderr on a terminal ``columns`` wide; return
    its exit code and everything the terminal received."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", *args],
        env={**env, "TERM": "xterm-256color"},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    received = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: every process holding it has exited
                break
            if not chunk:
                break
            received += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    text = received.decode(errors="replace")
    return process.wait(timeout=60), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # no colours


@pytest.mark.parametrize("columns", [80, 200])
def test_an_embedded_train_in_a_terminal_draws_a_bar_not_plain_log_lines(
    tmp_path: Path, columns: int
) -> None:
    code, screen = run_in_terminal(
        embedded_env(tmp_path), columns, "train", "--steps", "600", "--chunk-steps", "100"
    )
    assert code == 0, screen
    assert BAR_DONE * 10 in screen, screen
    assert "steps (100%)" not in screen, "the plain lines written for logs were printed"
    assert "run 1 succeeded: 600 steps" in screen


def test_a_failed_runs_error_breaks_between_words_at_80_columns(tmp_path: Path) -> None:
    code, screen = run_in_terminal(
        embedded_env(tmp_path), 80, "train", "--lr", "100", "--l2", "1", "--steps", "300"
    )
    assert code == 1, screen
    lines = screen.replace("\r\n", "\n").split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("run 1 failed: loss became"))
    said = lines[first : first + 3]
    # Left to the terminal, the message broke inside "100)" at column 80.
    assert all(len(line) <= 80 for line in said), said
    assert said[0].rstrip().endswith("(--lr, now") and said[1].startswith("100), e.g."), said


def test_a_sweeps_best_trial_breaks_between_words_at_80_columns(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: wide\nmethod: grid\nseed: 2\nval_size: 1000\nparameters:\n"
        "  lr: {values: [0.0123456, 0.0234567]}\n  momentum: {value: 0.9}\n"
        "  l2: {value: 0.0001}\n  schedule: {value: cosine}\n  init: {value: zeros}\n"
        "  steps: {value: 200}\n"
    )
    code, screen = run_in_terminal(embedded_env(tmp_path), 80, "sweep", "start", str(sweep))
    assert code == 0, screen
    lines = screen.replace("\r\n", "\n").split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("best: trial"))
    said = lines[first : first + 2]
    # Left to the terminal, the line broke inside "schedule=cosine" at column 80.
    assert all(len(line) <= 80 for line in said), said
    assert said[0].rstrip().endswith(",") and "steps=200)" in said[1], said
