"""The embedded mode of a sweep: its trials run in this process, one after another.

Each trial is a run executed by ``worker.jobs.execute_job``, exactly as a worker would, with its
QUEUED pack-mates when the sweep packs its trials (``worker.pack_job``); the transaction that
ends a trial creates the next one, and this loop takes the QUEUED trials in order.

A sweep whose process died (killed, machine rebooted) is left RUNNING with one trial RUNNING
under the dead process's lease; :func:`take_over_trials` ends that lease at once when the process
was on this machine (as ``trainq resume`` does for a run) so that the trial resumes from its
newest checkpoint, keeping the ASHA decisions already taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from storage import Repository
from storage.errors import InvalidStateError
from storage.records import RunRecord, RunStatus
from storage.sweep_records import SweepRecord
from worker.jobs import JobContext
from worker.lease_owner import owner_pid_if_dead_here
from worker.pack_job import execute_training
from worker.sweeps import advance_sweep

logger = logging.getLogger(__name__)


def run_sweep_here(
    context: JobContext,
    sweep_id: int,
    *,
    on_trial_end: Callable[[RunRecord], None] | None = None,
) -> SweepRecord:
    """Run every remaining trial of ``sweep_id`` here, in trial order, until the sweep ends.

    RUNNING trials with an expired lease are claimed again and resume from their newest
    checkpoint. When ``context.hand_back_requested()`` turns True, the trial in progress stops
    at its next chunk and is handed back (QUEUED, checkpointed) and no further trial starts:
    the sweep stays RUNNING, to be resumed.

    Args:
        context: who runs the trials.
        sweep_id: the sweep.
        on_trial_end: called with each trial's record once it ended (progress output).

    Returns:
        The sweep as it stands at the end (SUCCEEDED, CANCELLED when cancelled meanwhile, or
        RUNNING when stopped or when the trials left are owned by a live process elsewhere).
    """
    repository = context.repository
    while not context.hand_back_requested():
        advance_sweep(repository, sweep_id, None)
        waiting = [
            run
            for run in repository.list_runs(sweep_id=sweep_id)
            if run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        ]
        if not waiting:
            break
        ran = False
        taken: set[int] = set()  # trials a pack took along: not claimed again in this pass
        for run in sorted(waiting, key=lambda r: r.trial or 0):
            if context.hand_back_requested():
                break
            if run.id in taken:
                continue
            packed = execute_training(context, run.id)  # with its QUEUED pack-mates
            for outcome in (packed.run, *packed.mates):
                if outcome is not None:
                    ran = True
                    taken.add(outcome.id)
                    if on_trial_end is not None and outcome.status.terminal:
                        on_trial_end(outcome)
        if not ran:  # only trials owned by a live process elsewhere: nothing to do here
            break
    return repository.get_sweep(sweep_id)


def take_over_trials(repository: Repository, sweep_id: int) -> list[RunRecord]:
    """Take over the RUNNING trials whose process on this machine is gone.

    Each such trial's lease is ended now and the trial moves on as for any lost worker: QUEUED
    (the dead attempt counts against ``max_attempts``), or FAILED/CANCELLED, in which case its
    slot goes to the next trial in the same transaction.

    Returns:
        The trials taken over, as they are now.

    Raises:
        InvalidStateError: a trial is held by a live process, or by a process elsewhere whose
            lease has not expired yet (naming the trial, the host and the lease's end).
    """
    taken = []
    for run in repository.list_runs(sweep_id=sweep_id, statuses=[RunStatus.RUNNING]):
        pid = owner_pid_if_dead_here(run.lease_owner)
        if pid is not None and repository.expire_lease(run.id, run.attempt):
            logger.info("sweep %s: run %s's process %s is gone; taking over", sweep_id, run.id, pid)
        moved = repository.get_run(repository.requeue_expired(run.id).id)
        if moved.status is RunStatus.RUNNING:
            until = (
                moved.lease_expires_at.isoformat(timespec="seconds")
                if moved.lease_expires_at
                else "?"
            )
            raise InvalidStateError(
                f"sweep {sweep_id}: trial {moved.trial} (run {moved.id}) is running on "
                f"{moved.worker_host} (lease until {until}); if that process died, try again once "
                "the lease has expired"
            )
        taken.append(moved)
    return taken
