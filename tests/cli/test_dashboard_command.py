"""`trainq dashboard` as a command: its help, and a taken port as a clear error."""

from __future__ import annotations

import socket

from api_cli.exit_codes import ExitCode
from tests.cli.conftest import Trainq


def test_the_help_shows_the_options_and_examples(trainq: Trainq) -> None:
    result = trainq("dashboard", "--help")
    assert result.returncode == 0
    assert "--host" in result.stdout and "--port" in result.stdout
    assert "trainq dashboard --port 8060" in result.stdout
    assert "read-only" in result.stdout


def test_a_port_that_is_taken_is_a_clear_error_without_a_traceback(trainq: Trainq) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = trainq("dashboard", "--port", str(port), timeout_s=60)
    assert result.returncode == ExitCode.UNAVAILABLE
    assert f"--port {port}" in result.stderr and "pick another --port" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_out_of_range_is_a_usage_error(trainq: Trainq) -> None:
    result = trainq("dashboard", "--port", "70000")
    assert result.returncode == ExitCode.USAGE
    assert "--port" in result.stderr
