"""``trainq runs``: list runs and show one in detail."""

from __future__ import annotations

from typing import Annotated

import typer

from api_cli.options import parse_status, parse_tags
from api_cli.output import Format, print_csv, print_json, print_table, stdout
from api_cli.state import STATE
from api_cli.views import (
    EVAL_TABLE_HEADER,
    RUN_LIST_HEADER,
    RUN_TABLE_HEADER,
    eval_table_row,
    run_detail_dict,
    run_dict,
    run_list_row,
    run_table_row,
)

app = typer.Typer(
    help="List and inspect runs.",
    no_args_is_help=True,
    epilog="Examples:\n\n  trainq runs list --status running\n\n  trainq runs show 7 --format json",
)


@app.command("list")
def list_runs(
    status: Annotated[list[str] | None, typer.Option(help="Filter by status; repeatable.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Filter by KEY=VALUE; repeatable.")] = None,
    name: Annotated[str | None, typer.Option(help="Filter by exact name.")] = None,
    sweep: Annotated[int | None, typer.Option(help="Only the trials of this sweep.")] = None,
    evals: Annotated[
        bool, typer.Option("--evals", help="List evaluation jobs instead of training runs.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    output_format: Annotated[
        Format, typer.Option("--format", help="table, json or csv.")
    ] = Format.TABLE,
) -> None:
    """List training runs, newest first."""
    from storage.records import JobKind

    runs = STATE.repository.list_runs(
        kind=JobKind.EVAL if evals else JobKind.TRAIN,
        statuses=[parse_status(text) for text in status or []] or None,
        tags=parse_tags(tag or []) or None,
        name=name,
        limit=limit,
        sweep_id=sweep,
    )
    if output_format is Format.JSON:
        print_json([run_dict(run) for run in runs])
    elif output_format is Format.CSV:
        print_csv(RUN_LIST_HEADER, [run_list_row(run) for run in runs])
    elif not runs:
        stdout.print("no runs yet: start one with `trainq train`")
    elif evals:
        print_table(None, EVAL_TABLE_HEADER, [eval_table_row(job) for job in runs])
    else:
        print_table(None, RUN_TABLE_HEADER, [run_table_row(run) for run in runs])


@app.command("show")
def show_run(
    run_id: Annotated[int, typer.Argument(help="The run's id.")],
    output_format: Annotated[
        Format, typer.Option("--format", help="table or json.")
    ] = Format.TABLE,
) -> None:
    """Show one run: config (seed included), status, attempts, device, summary, evaluations."""
    repository = STATE.repository
    run = repository.get_run(run_id)
    detail = run_detail_dict(
        run, repository.list_evaluations(run_id), repository.list_checkpoints(run_id)
    )
    if output_format is Format.JSON:
        print_json(detail)
        return
    rows = [
        (key, value)
        for key, value in detail.items()
        if key not in ("evaluations", "checkpoints", "run_id")
    ]
    rows.append(("checkpoints", ", ".join(str(c["step"]) for c in detail["checkpoints"]) or None))
    print_table(f"run {run_id}", ("field", "value"), rows)
    if detail["evaluations"]:
        print_table(
            "evaluations",
            ("checkpoint", "split", "loss", "accuracy"),
            [
                (e["checkpoint_step"], e["split"], e["loss"], e["accuracy"])
                for e in detail["evaluations"]
            ],
        )
