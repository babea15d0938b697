"""``trainq resume``: continue a run whose process died, from its newest checkpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from api_cli.output import stderr, stdout
from api_cli.progress import wait_for_run
from api_cli.state import STATE
from storage.errors import InvalidStateError
from storage.validation import MAX_ID
from worker.errors import InvalidConfigError


def resume(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The interrupted run's id.")],
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
    """Resume a run whose process died, from its newest checkpoint.

    In a cluster, workers do this by themselves once the lease expires. In embedded mode nothing
    else runs, so a killed `trainq train` (terminal closed, machine rebooted) leaves its run
    RUNNING with an expired lease: resume continues it here, exactly as if never interrupted.

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
