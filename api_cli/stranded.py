"""Runs left RUNNING by a process of this host that is gone (a killed embedded ``trainq train``).

Nothing else continues such a run in embedded mode, and on a cluster its lease must first run
out; ``status``, ``runs list`` and ``runs show`` say so and name the command that continues it
at once (``trainq resume`` takes over from a dead process of this host: ``worker.lease_owner``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.records import RunRecord


def dead_owners(runs: Iterable[RunRecord]) -> dict[int, int]:
    """``{run id: pid}`` of the RUNNING runs among ``runs`` whose lease owner is a process of
    this host that no longer exists."""
    from storage.records import RunStatus
    from worker.lease_owner import owner_pid_if_dead_here

    found = {}
    for run in runs:
        if run.status is RunStatus.RUNNING:
            pid = owner_pid_if_dead_here(run.lease_owner)
            if pid is not None:
                found[run.id] = pid
    return found


def stranded_sentence(run_id: int, pid: int) -> str:
    """E.g. ``run 7's process (pid 4242) is gone; continue it with `trainq resume 7```."""
    return f"run {run_id}'s process (pid {pid}) is gone; continue it with `trainq resume {run_id}`"
