"""``trainq resume``: continue a run whose process died, from its newest checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.output import stderr, stdout
from api_cli.state import STATE
from api_cli.submission import (
    JsonOption,
    TimeoutOption,
    WaitOption,
    follow_run,
    keeping_work_if_output_closes,
    refuse_no_wait_in_process,
    report_run,
)
from storage.errors import InvalidStateError
from storage.validation import MAX_ID

if TYPE_CHECKING:
    from storage.records import RunRecord


def resume(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The interrupted run's id.")],
    wait: WaitOption = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = None,
) -> None:
    """Resume a run whose process died or was interrupted, from its newest checkpoint.

    In a cluster, workers do this by themselves once the lease expires. In embedded mode nothing
    else runs, so a killed `trainq train` (terminal closed, machine rebooted) leaves its run
    RUNNING: resume continues it here, exactly as if never interrupted. When the run's process
    was on this machine and is gone, resume takes over at once; otherwise it waits for the lease.

    Example: trainq resume 7
    """
    from storage.records import RunStatus

    refuse_no_wait_in_process(wait, timeout)
    repository = STATE.repository
    run = repository.get_run(run_id)
    if run.status.terminal:
        raise InvalidStateError(f"run {run_id} already finished ({run.status}); nothing to resume")
    if run.status is RunStatus.RUNNING:
        _take_over_from_a_dead_process(run)
        run = repository.get_run(repository.requeue_expired(run_id).id)
        if run.status is RunStatus.RUNNING:
            expires = (
                run.lease_expires_at.isoformat(timespec="seconds") if run.lease_expires_at else "?"
            )
            raise InvalidStateError(
                f"run {run_id} is running on {run.worker_host} (lease until {expires}); "
                "if that process died, try again once the lease has expired"
            )
        if run.status.terminal:
            report_run(run, json_output=json_output)
            return
    if not json_output:
        checkpoints = repository.list_checkpoints(run_id)
        start = f"its checkpoint at step {checkpoints[-1].step:,}" if checkpoints else "step 0"
        stdout.print(f"run {run_id} resumes from {start}")
    STATE.client.dispatcher.check()
    (handle,) = STATE.client.dispatch_many([run])
    with keeping_work_if_output_closes(handle):
        follow_run(handle, wait=wait, json_output=json_output, timeout_s=timeout)


def _take_over_from_a_dead_process(run: RunRecord) -> None:
    """End the lease of a process on this host that no longer exists, instead of waiting it out."""
    from worker.lease_owner import owner_pid_if_dead_here

    pid = owner_pid_if_dead_here(run.lease_owner)
    if pid is not None and STATE.repository.expire_lease(run.id, run.attempt):
        stderr.print(f"run {run.id}: its process {pid} is gone; taking the run over")
