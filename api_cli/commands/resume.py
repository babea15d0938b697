"""``trainq resume``: continue a run whose process died, from its newest checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.output import stderr, stdout
from api_cli.progress import wait_for_run
from api_cli.state import STATE
from storage.errors import InvalidStateError
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage.records import RunRecord


def resume(
    run_id: Annotated[int, typer.Argument(help="The interrupted run's id.")],
    wait: Annotated[
        bool | None,
        typer.Option(
            "--wait/--no-wait", help="Watch the run to the end (default: wait when embedded)."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Resume a run whose process died or was interrupted, from its newest checkpoint.

    In a cluster, workers do this by themselves once the lease expires. In embedded mode nothing
    else runs, so a killed `trainq train` (terminal closed, machine rebooted) leaves its run
    RUNNING: resume continues it here, exactly as if never interrupted. When the run's process
    was on this machine and is gone, resume takes over at once; otherwise it waits for the lease.

    Example: trainq resume 7
    """
    from api_cli.commands.train import report_run
    from storage.records import RunStatus

    settings = STATE.settings
    if wait is False and settings.embedded:
        raise InvalidConfigError(
            "--no-wait needs a broker (TRAINQ_BROKER_URL); embedded jobs run here"
        )
    repository = STATE.repository
    run = repository.get_run(run_id)
    if run.status.terminal:
        raise InvalidStateError(f"run {run_id} already finished ({run.status}); nothing to resume")
    if run.status is RunStatus.RUNNING:
        _take_over_from_a_dead_process(run)
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
        checkpoints = repository.list_checkpoints(run_id)
        start = f"its checkpoint at step {checkpoints[-1].step:,}" if checkpoints else "step 0"
        stdout.print(f"run {run_id} resumes from {start}")
    show_progress = not json_output or stderr.is_terminal
    if settings.embedded:
        from api_cli.embedded import run_in_process

        run = run_in_process(STATE, run_id, show_progress=show_progress)
    else:
        STATE.dispatcher.ping()
        STATE.dispatcher.publish(repository, run)
        if wait:
            run = wait_for_run(repository, run_id, show_progress=show_progress)
    report_run(run, json_output=json_output)


def _take_over_from_a_dead_process(run: RunRecord) -> None:
    """End the lease of a process on this host that no longer exists, instead of waiting it out."""
    from worker.lease_owner import owner_pid_if_dead_here

    pid = owner_pid_if_dead_here(run.lease_owner)
    if pid is not None and STATE.repository.expire_lease(run.id, run.attempt):
        stderr.print(f"run {run.id}: its process {pid} is gone; taking the run over")
