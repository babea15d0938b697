"""Run the real `trainq` command in embedded mode: no broker, SQLite in a temporary home."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage import Repository, StorageError

Trainq = Callable[..., subprocess.CompletedProcess[str]]


def embedded_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINQ_")}
    env.update(TRAINQ_HOME=str(home), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    return env


def trainq_in(home: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `trainq ARGS...` embedded with ``home`` as TRAINQ_HOME; return the completed process."""
    return python_in(home, "-m", "api_cli", *args, timeout_s=timeout_s)


def python_in(home: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS...`` (a probe: ``-c CODE``) embedded with ``home`` as TRAINQ_HOME."""
    return subprocess.run(
        [sys.executable, *args],
        env=embedded_env(home),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def wait_for_run_1(
    repository: Repository,
    process: subprocess.Popen[Any],
    reached: Callable[[Repository], bool],
    what: str,
    timeout_s: float = 180,
) -> None:
    """Poll until run 1 (of the `trainq` ``process`` writing to ``repository``) has ``reached``
    what is awaited; fail if the process ends first or ``what`` never comes."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert time.monotonic() < deadline, f"run 1 never {what}"
        assert process.poll() is None, f"the run ended before it {what}"
        try:
            if repository.list_runs() and reached(repository):
                return
        except StorageError:  # the file or its schema does not exist yet
            pass
        time.sleep(0.02)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One TRAINQ_HOME per test module, so runs made by one test can be read by the next."""
    return tmp_path_factory.mktemp("trainq-home")


@pytest.fixture(scope="module")
def trainq(home: Path) -> Trainq:
    """Call `trainq ARGS...` as a subprocess and return its completed process."""

    def call(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        return trainq_in(home, *args, timeout_s=timeout_s)

    return call
