"""`trainq --version` answers at once with the installed package's version."""

from __future__ import annotations

from importlib.metadata import version

from tests.cli.conftest import Trainq


def test_version_prints_the_installed_version_and_exits_zero(trainq: Trainq) -> None:
    result = trainq("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"trainq {version('trainq')}"
