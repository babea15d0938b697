"""A lease owner ("host:pid:label") is known dead only when it was a process of this host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from worker.lease_owner import owner_pid_if_dead_here

HOST = socket.gethostname()


def test_a_process_of_this_host_that_exited_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    assert owner_pid_if_dead_here(f"{HOST}:{child.pid}:embedded") == child.pid


def test_an_exited_process_not_yet_reaped_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited; left a zombie

        assert owner_pid_if_dead_here(f"{HOST}:{child.pid}:embedded") == child.pid
    finally:
        child.wait()


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param(f"{HOST}:{os.getpid()}:embedded", id="this-very-process"),
        pytest.param(f"{HOST}:{os.getppid()}:embedded", id="a-live-process"),
        pytest.param("some-other-host:999999:embedded", id="another-host"),
        pytest.param(f"{HOST}:not-a-pid:embedded", id="malformed"),
        pytest.param(None, id="no-owner"),
    ],
)
def test_any_other_owner_may_be_alive(owner: str | None) -> None:
    assert owner_pid_if_dead_here(owner) is None
