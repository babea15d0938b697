"""Lease owners are ``host:pid:label`` (see ``worker.jobs.JobContext``): is such a process gone?

``trainq resume`` uses this to take over a run at once when the process that held it died on this
very host (a killed ``trainq train``), instead of waiting out the lease. Only a process on this
host can be known dead; anything else waits for its lease to expire, as before.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def owner_pid_if_dead_here(owner: str | None) -> int | None:
    """The pid of ``owner`` when it names a process of this host that no longer exists.

    Containers that share a host name but not a pid namespace would see each other's processes
    as gone; compose gives every container its own host name, and a wrong guess costs only work:
    the attempt fence stops the process that lost its run.

    Returns:
        The dead owner's pid, or ``None`` when the owner is alive, elsewhere, or unknown.
    """
    host, _, rest = (owner or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid in (0, os.getpid()):
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return pid
    except PermissionError:
        return None  # exists, owned by another user
    return pid if _is_zombie(pid) else None


def _is_zombie(pid: int) -> bool:
    """An exited process its parent has not reaped yet still answers ``kill(pid, 0)``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may contain spaces.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
