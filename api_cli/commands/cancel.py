"""``trainq cancel``: stop runs (queued ones never start; running ones stop within one chunk)."""

from __future__ import annotations

from typing import Annotated

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import literal, print_json, stderr, stdout
from api_cli.state import STATE
from storage.errors import InvalidStateError, NotFoundError
from storage.validation import MAX_ID


def cancel(
    run_ids: Annotated[list[int], typer.Argument(min=1, max=MAX_ID, help="One or more run ids.")],
    evals: Annotated[
        bool,
        typer.Option("--evals", help="The ids are evaluation jobs (`trainq runs list --evals`)."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Cancel runs. A queued run is CANCELLED at once; a running one stops at its next chunk.

    Example: trainq cancel 7 8 9   ·   trainq cancel --evals 3 (evaluation job 3)
    """
    from storage.records import JobKind

    kind = JobKind.EVAL if evals else JobKind.TRAIN
    running = "an evaluation in progress finishes" if evals else "stops at its next chunk"
    key = "evaluation_job_id" if evals else "run_id"
    repository = STATE.repository
    results = []
    problems = 0
    for run_id in run_ids:
        try:
            run = repository.cancel_job(run_id, kind=kind)
        except (InvalidStateError, NotFoundError) as exc:
            problems += 1
            stderr.print(f"[red]error:[/] {literal(exc)}")
            results.append({key: run_id, "error": str(exc)})
            continue
        state = "cancelled" if run.status.terminal else f"cancel requested ({running})"
        results.append(
            {key: run_id, "status": run.status.value, "cancel_requested": run.cancel_requested}
        )
        if not json_output:
            stdout.print(f"{run.label}: {state}")
    if json_output:
        print_json(results)
    if problems:
        raise typer.Exit(ExitCode.INVALID_STATE)
