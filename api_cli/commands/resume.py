"""``trainq resume``: continue a run whose process died, from its newest checkpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from api_cli.output import stdout
from api_cli.state import STATE
from api_cli.submission import (
    JsonOption,
    TimeoutOption,
    WaitOption,
    follow_run,
    refuse_no_wait_in_process,
    report_run,
)
from storage.errors import InvalidStateError
from storage.validation import MAX_ID


def resume(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The interrupted run's id.")],
    wait: WaitOption = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = None,
) -> None:
    """Resume a run whose process died, from its newest checkpoint.

    In a cluster, workers do this by themselves once the lease expires. In embedded mode nothing
    else runs, so a killed `trainq train` (terminal closed, machine rebooted) leaves its run
    RUNNING with an expired lease: resume continues it here, exactly as if never interrupted.

    Example: trainq resume 7
    """
    from storage.records import RunStatus

    refuse_no_wait_in_process(wait, timeout)
    repository = STATE.repository
    run = repository.get_run(run_id)
    if run.status.terminal:
        raise InvalidStateError(f"run {run_id} already finished ({run.status}); nothing to resume")
    if run.status is RunStatus.RUNNING:
        run = repository.requeue_expired(run_id)
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
        stdout.print(f"run {run_id} resumes from step {run.steps_done}")
    STATE.client.dispatcher.check()
    (handle,) = STATE.client.dispatch_many([run])
    follow_run(handle, wait=wait, json_output=json_output, timeout_s=timeout)
