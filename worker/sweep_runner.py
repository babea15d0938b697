"""The embedded mode of a sweep: its trials run in this process, one after another.

Each trial is a run executed by ``worker.jobs.execute_job``, exactly as a worker would; when it
ends, the job's own finish hook fills the freed slot, and this loop takes the next QUEUED trial.
"""

from __future__ import annotations

from collections.abc import Callable

from storage.records import RunRecord, RunStatus
from storage.sweep_records import SweepRecord
from worker.jobs import JobContext, execute_job
from worker.sweeps import advance_sweep


def run_sweep_here(
    context: JobContext,
    sweep_id: int,
    *,
    on_trial_end: Callable[[RunRecord], None] | None = None,
) -> SweepRecord:
    """Run every remaining trial of ``sweep_id`` here, in trial order, until the sweep ends.

    Also continues a sweep whose process died: RUNNING trials with an expired lease are claimed
    again and resume from their newest checkpoint.

    Args:
        context: who runs the trials.
        sweep_id: the sweep.
        on_trial_end: called with each trial's record after its job returns (progress output).

    Returns:
        The sweep as it stands at the end (SUCCEEDED, or CANCELLED when cancelled meanwhile).
    """
    repository = context.repository
    while True:
        advance_sweep(repository, sweep_id, None)
        waiting = [
            run
            for run in repository.list_runs(sweep_id=sweep_id)
            if run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        ]
        if not waiting:
            break
        ran = False
        for run in sorted(waiting, key=lambda r: r.trial or 0):
            if execute_job(context, run.id) is not None:
                ran = True
                if on_trial_end is not None:
                    on_trial_end(repository.get_run(run.id))
        if not ran:  # only trials owned by a live process elsewhere: nothing to do here
            break
    return repository.get_sweep(sweep_id)
